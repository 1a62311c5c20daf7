/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libFuzzer target: the virtio-blk request parser.  A virtio-blk device on
 * an in-memory backend (a struct virtio_blk_backend_ops written here) is
 * driven through the virtio-mmio transport by libvirtio-queue's mock
 * driver with requests built from the input: any type (valid or not), any
 * sector (random, near the capacity, near 2^64), the header split over
 * descriptors or cut short, 0..3 readable and 0..3 writable data buffers
 * of random lengths with input bytes as payload (discard / write-zeroes
 * segments), notifications, resets with requests in flight, cache mode
 * writes, completions synchronous or held back and released in random
 * order.  The first input byte picks the ring (fuzz-ring.h): split, or
 * packed (with IN_ORDER when completions are synchronous, the only case
 * where the device keeps pop order), or packed offered and refused; in a
 * packed ring the input can also write hostile raw descriptors.
 *
 * Invariants (abort on violation):
 *   - the backend is only asked for whole ranges inside the capacity, and
 *     READ/WRITE iovecs add up to the length and lie in guest RAM;
 *   - the used length never exceeds the chain's writable bytes;
 *   - with synchronous completions, a chain with a writable byte gets a
 *     status in {OK, IOERR, UNSUPP} in its last writable byte;
 *   - nothing completes after a reset (the used index does not move);
 *   - the device never enters NEEDS_RESET for a per-request error (only a
 *     ring-level violation could, and the mock driver makes none; after a
 *     raw descriptor the used lengths and NEEDS_RESET are not checked until
 *     the next reset).
 */
#include <cvmm/devices/virtio-blk.h>
#include <cvmm/devices/virtio-mmio.h>
#include <cvmm/virtio-queue-driver.h>
#include <cvmm/vm-memory.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_mmio.h>

#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-ring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM_SIZE  (1u << 20)
#define CAP_BYTES (256u << 10)
#define QSIZE	  64u
#define AREA_BASE 0x20000u
#define AREA_SIZE 0x2000u
#define MAX_HELD  256

#define CHECK(c)                 \
	do {                     \
		if (!(c))        \
			abort(); \
	} while (0)

struct in {
	const uint8_t *p;
	size_t n;
};

static uint64_t take(struct in *in, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++) {
		v <<= 8;
		if (in->n) {
			v |= *in->p++;
			in->n--;
		}
	}
	return v;
}

/* ------------------------------------------------ in-memory backend */

static uint8_t disk[CAP_BYTES];
static uint8_t *ram; /* host view of guest RAM */

struct ram_be {
	bool defer;
	struct virtio_blk_io *held[MAX_HELD];
	unsigned nheld;
};

static void check_iov(const struct virtio_blk_io *io)
{
	uint64_t sum = 0;

	CHECK(io->iovcnt > 0);
	for (int i = 0; i < io->iovcnt; i++) {
		const uint8_t *b = io->iov[i].iov_base;

		CHECK(b >= ram && b + io->iov[i].iov_len <= ram + MEM_SIZE);
		sum += io->iov[i].iov_len;
	}
	CHECK(sum == io->len);
}

static int64_t ram_do(struct virtio_blk_io *io)
{
	uint64_t done = 0;

	CHECK(io->offset <= CAP_BYTES && io->len <= CAP_BYTES - io->offset);
	switch (io->op) {
	case VIRTIO_BLK_IO_READ:
	case VIRTIO_BLK_IO_WRITE:
		check_iov(io);
		for (int i = 0; i < io->iovcnt; i++) {
			uint8_t *d = disk + io->offset + done;

			if (io->op == VIRTIO_BLK_IO_READ)
				memcpy(io->iov[i].iov_base, d,
				       io->iov[i].iov_len);
			else
				memcpy(d, io->iov[i].iov_base,
				       io->iov[i].iov_len);
			done += io->iov[i].iov_len;
		}
		return (int64_t)done;
	case VIRTIO_BLK_IO_FLUSH:
		return 0;
	case VIRTIO_BLK_IO_DISCARD:
	case VIRTIO_BLK_IO_WRITE_ZEROES:
		CHECK(io->len > 0);
		memset(disk + io->offset, 0, io->len);
		/* Sometimes refuse ZERO_RANGE like tmpfs does. */
		if (io->op == VIRTIO_BLK_IO_WRITE_ZEROES &&
		    !(io->flags & VIRTIO_BLK_IO_F_UNMAP) && (io->offset & 512))
			return -EOPNOTSUPP;
		return 0;
	default:
		abort();
	}
}

static int ram_submit(void *b, struct virtio_blk_io *io)
{
	struct ram_be *be = b;

	if (be->defer) {
		if (be->nheld >= MAX_HELD)
			return -EBUSY;
		/* Check the request now: it must be valid when submitted. */
		CHECK(io->offset <= CAP_BYTES &&
		      io->len <= CAP_BYTES - io->offset);
		if (io->op <= VIRTIO_BLK_IO_WRITE)
			check_iov(io);
		be->held[be->nheld++] = io;
		return 0;
	}
	virtio_blk_io_complete(io, ram_do(io));
	return 0;
}

/* Release held operations: in reverse order, or every other first. */
static void ram_release(struct ram_be *be, unsigned how)
{
	struct virtio_blk_io *list[MAX_HELD];
	unsigned n = be->nheld;

	memcpy(list, be->held, n * sizeof(list[0]));
	be->nheld = 0;
	if (how & 1) {
		for (unsigned i = n; i-- > 0;)
			virtio_blk_io_complete(list[i], ram_do(list[i]));
	} else {
		for (unsigned i = 0; i < n; i += 2)
			virtio_blk_io_complete(list[i], ram_do(list[i]));
		for (unsigned i = 1; i < n; i += 2)
			virtio_blk_io_complete(list[i], ram_do(list[i]));
	}
}

static void ram_cancel(void *b)
{
	struct ram_be *be = b;
	unsigned n = be->nheld;

	be->nheld = 0;
	for (unsigned i = 0; i < n; i++)
		virtio_blk_io_complete(be->held[i], -ECANCELED);
}

static const struct virtio_blk_backend_ops ram_ops = {
	.submit = ram_submit,
	.cancel_all = ram_cancel,
};

/* ------------------------------------------------------- the driver */

struct fx {
	struct guest_region *region;
	struct guest_memory *mem;
	struct virtio_blk *blk;
	struct virtio_device *dev;
	struct virtio_mmio *mm;
	struct virtq_driver *drv;
	struct ram_be be;
	uint64_t features;
	bool raw; /* raw descriptors written since the last driver_init() */
	uint32_t wlen[QSIZE];	    /* writable bytes of the chain at head */
	guest_addr_t status[QSIZE]; /* its last writable byte, or 0 */
	unsigned area;
};

static void mw(struct fx *f, uint32_t off, uint32_t v)
{
	virtio_mmio_write(f->mm, off, &v, 4);
}

static uint32_t mr(struct fx *f, uint32_t off)
{
	uint32_t v = 0;

	virtio_mmio_read(f->mm, off, &v, 4);
	return v;
}

static bool driver_init(struct fx *f, uint64_t drop)
{
	guest_addr_t desc, avail, used;
	uint64_t feat = 0;

	virtq_driver_destroy(f->drv);
	f->drv = NULL;
	mw(f, VIRTIO_MMIO_STATUS, 0);
	mw(f, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	mw(f, VIRTIO_MMIO_STATUS,
	   VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	for (uint32_t p = 0; p < 2; p++) {
		mw(f, VIRTIO_MMIO_DEVICE_FEATURES_SEL, p);
		feat |= (uint64_t)mr(f, VIRTIO_MMIO_DEVICE_FEATURES)
			<< (32 * p);
	}
	feat &= ~drop;
	feat |= 1ull << VIRTIO_F_VERSION_1;
	f->features = feat;
	for (uint32_t p = 0; p < 2; p++) {
		mw(f, VIRTIO_MMIO_DRIVER_FEATURES_SEL, p);
		mw(f, VIRTIO_MMIO_DRIVER_FEATURES,
		   (uint32_t)(feat >> (32 * p)));
	}
	mw(f, VIRTIO_MMIO_STATUS,
	   VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		   VIRTIO_CONFIG_S_FEATURES_OK);
	if (!(mr(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK))
		return false;
	virtq_driver_layout(QSIZE, 0x1000, &desc, &avail, &used);
	if (virtq_driver_create(f->mem, QSIZE, feat, desc, avail, used,
				&f->drv))
		return false;
	mw(f, VIRTIO_MMIO_QUEUE_SEL, 0);
	mw(f, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	mw(f, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	mw(f, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
	mw(f, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)avail);
	mw(f, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, 0);
	mw(f, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)used);
	mw(f, VIRTIO_MMIO_QUEUE_USED_HIGH, 0);
	mw(f, VIRTIO_MMIO_QUEUE_READY, 1);
	mw(f, VIRTIO_MMIO_STATUS,
	   VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
		   VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	memset(f->wlen, 0, sizeof(f->wlen));
	memset(f->status, 0, sizeof(f->status));
	f->raw = false;
	return mr(f, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_DRIVER_OK;
}

static uint32_t pick_type(struct in *in)
{
	static const uint32_t types[] = {
		VIRTIO_BLK_T_IN,      VIRTIO_BLK_T_OUT,
		VIRTIO_BLK_T_FLUSH,   VIRTIO_BLK_T_GET_ID,
		VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES,
	};
	uint8_t t = (uint8_t)take(in, 1);

	if (t < 6 * 40)
		return types[t % 6];
	return (uint32_t)take(in, 4);
}

static uint64_t pick_sector(struct in *in)
{
	uint8_t k = (uint8_t)take(in, 1);
	uint64_t cap = CAP_BYTES / 512;

	switch (k & 3) {
	case 0:
	case 1:
		return take(in, 2) % (cap + 8);
	case 2:
		return UINT64_MAX - (take(in, 1) & 0x3f) -
		       ((k & 4) ? (UINT64_MAX >> 9) * 511 : 0);
	default:
		return take(in, 8);
	}
}

static void add_request(struct fx *f, struct in *in)
{
	struct virtq_driver_buf b[10];
	uint32_t type = pick_type(in);
	uint64_t sector = pick_sector(in);
	uint8_t shape = (uint8_t)take(in, 1);
	unsigned nr = shape & 3, nw = (shape >> 2) & 3, n = 0;
	guest_addr_t a = AREA_BASE + (f->area++ % QSIZE) * AREA_SIZE, p = a;
	struct virtio_blk_outhdr hdr = {.type = htole32(type),
					.sector = htole64(sector)};
	uint32_t wtotal = 0;
	guest_addr_t last_w = 0;
	uint16_t head;

	memcpy(ram + p, &hdr, sizeof(hdr));
	if (shape & 0x10) {
		/* header cut short (0..15 bytes) or split in two */
		uint32_t cut = (uint32_t)take(in, 1) % 16;

		if (shape & 0x20) {
			if (cut)
				b[n++] = (struct virtq_driver_buf){p, cut, 0};
		} else {
			b[n++] = (struct virtq_driver_buf){p, cut ? cut : 8, 0};
			b[n++] = (struct virtq_driver_buf){
				p + (cut ? cut : 8), 16 - (cut ? cut : 8), 0};
		}
	} else {
		b[n++] = (struct virtq_driver_buf){p, 16, 0};
	}
	p += 16;
	for (unsigned i = 0; i < nr; i++) {
		uint32_t len = 1 + (uint32_t)take(in, 2) % 1024;

		if (take(in, 1) & 1)
			len = (len & ~511u) ? (len & ~511u) : 16;
		for (uint32_t k = 0; k < len && in->n; k++)
			ram[p + k] = (uint8_t)take(in, 1);
		b[n++] = (struct virtq_driver_buf){p, len, 0};
		p += len;
	}
	for (unsigned i = 0; i < nw; i++) {
		uint32_t len = 1 + (uint32_t)take(in, 2) % 1024;

		if (take(in, 1) & 1)
			len = (len & ~511u) + 1;
		b[n++] = (struct virtq_driver_buf){p, len, VRING_DESC_F_WRITE};
		wtotal += len;
		last_w = p + len - 1;
		ram[last_w] = 0xee;
		p += len;
	}
	if (n == 0)
		return; /* the mock driver needs one buffer */
	if (virtq_driver_add(f->drv, b, n, &head))
		return; /* ring full: the next notify frees it */
	CHECK(head < QSIZE);
	f->wlen[head] = wtotal;
	f->status[head] = last_w;
}

static void collect(struct fx *f)
{
	struct vring_used_elem e;
	int rc;

	for (unsigned i = 0; i < QSIZE * 2; i++) {
		rc = virtq_driver_get_used(f->drv, &e);
		if (rc < 0 && f->raw)
			break; /* the raw descriptors broke the ring */
		CHECK(rc >= 0);
		if (rc == 0)
			break;
		/* After raw descriptors the ring may hold slots the guest
		 * itself marked used (any id): fuzz-virtio-device checks what
		 * the device writes in a hostile packed ring. */
		if (f->raw)
			continue;
		CHECK(e.id < QSIZE);
		CHECK(e.len <= f->wlen[e.id]);
		if (!f->be.defer && f->status[e.id] && e.len > 0)
			CHECK(ram[f->status[e.id]] <= VIRTIO_BLK_S_UNSUPP);
	}
}

/* A hostile packed descriptor (any id, flags mostly among the defined
 * bits) in a random slot, then a notify. */
static void raw_packed(struct fx *f, struct in *in)
{
	struct vring_packed_desc d;
	uint16_t slot = (uint16_t)(take(in, 1) % QSIZE), fl;

	d.addr = htole64(take(in, 1) & 1 ? take(in, 8)
					 : AREA_BASE + take(in, 3) % MEM_SIZE);
	d.len = htole32((uint32_t)take(in, 4));
	d.id = htole16((uint16_t)take(in, 2));
	fl = (uint16_t)take(in, 2);
	if (!(fl & 0x40))
		fl &= 0x8087; /* NEXT, WRITE, INDIRECT, AVAIL, USED */
	d.flags = htole16(fl);
	f->raw = true;
	virtq_driver_write_packed_desc(f->drv, slot, &d);
	mw(f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fx f;
	struct guest_region_params rp = {0};
	struct virtio_blk_options o = {0};
	struct in in = {data, size};
	uint8_t mode = (uint8_t)take(&in, 1);
	uint8_t flags = (uint8_t)take(&in, 1);
	struct fuzz_ring ring = fuzz_ring_mode(mode, !(flags & 2));
	uint64_t drop = ring.refuse;
	void *host;

	memset(&f, 0, sizeof(f));
	memset(disk, 0x11, sizeof(disk));
	rp.size = MEM_SIZE;
	rp.backing = GUEST_REGION_ANON_PRIVATE;
	if (guest_region_create(&rp, &f.region))
		abort();
	if (guest_memory_create(&f.region, 1, &f.mem) ||
	    guest_memory_translate(f.mem, 0, MEM_SIZE, &host))
		abort();
	ram = host;
	f.be.defer = flags & 2;
	o.queue_size = QSIZE;
	o.serial = "fuzz-serial-0123456789";
	o.max_discard_seg = 1 + (flags >> 5);
	o.max_write_zeroes_seg = 1 + (flags >> 5);
	o.max_discard_sectors = 64;
	if (flags & 1)
		o.flags |= VIRTIO_BLK_OPT_READ_ONLY;
	if (flags & 4)
		o.flags |= VIRTIO_BLK_OPT_WZ_MAY_UNMAP;
	if (flags & 8)
		drop |= (1ull << VIRTIO_BLK_F_DISCARD) |
			(1ull << VIRTIO_BLK_F_WRITE_ZEROES);
	if (flags & 16)
		drop |= (1ull << VIRTIO_BLK_F_FLUSH);
	if (virtio_blk_create_with_backend(&ram_ops, &f.be, CAP_BYTES, &o,
					   &f.blk))
		abort();
	f.dev = virtio_blk_device(f.blk);
	fuzz_ring_offer(f.dev, ring);
	if (virtio_device_set_memory(f.dev, f.mem) ||
	    virtio_mmio_create(f.dev, NULL, &f.mm))
		abort();
	if (!driver_init(&f, drop))
		abort();

	for (unsigned step = 0; step < 256 && in.n; step++) {
		uint8_t op = (uint8_t)take(&in, 1);

		switch (op % 12) {
		case 0:
		case 1:
		case 2:
		case 3:
		case 4:
		case 5:
			add_request(&f, &in);
			break;
		case 6:
		case 7:
			mw(&f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
			collect(&f);
			break;
		case 8:
			virtio_device_lock(f.dev);
			ram_release(&f.be, op >> 4);
			virtio_device_unlock(f.dev);
			collect(&f);
			break;
		case 9: {
			/* reset with requests in flight: nothing completes */
			uint16_t before = virtq_driver_used_idx(f.drv);

			mw(&f, VIRTIO_MMIO_STATUS, 0);
			CHECK(f.be.nheld == 0);
			CHECK(virtio_blk_in_flight(f.blk) == 0);
			CHECK(virtq_driver_used_idx(f.drv) == before);
			if (!driver_init(&f, drop))
				abort();
			break;
		}
		case 10: {
			uint8_t wce = (uint8_t)(op >> 4);

			virtio_mmio_write(
				f.mm,
				VIRTIO_MMIO_CONFIG +
					offsetof(struct virtio_blk_config, wce),
				&wce, 1);
			break;
		}
		default:
			if ((op & 0x80) && virtq_driver_packed(f.drv))
				raw_packed(&f, &in);
			collect(&f);
			break;
		}
		CHECK(f.raw || !(mr(&f, VIRTIO_MMIO_STATUS) &
				 VIRTIO_CONFIG_S_NEEDS_RESET));
	}
	mw(&f, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	virtio_device_lock(f.dev);
	ram_release(&f.be, 1);
	virtio_device_unlock(f.dev);
	collect(&f);

	virtio_mmio_destroy(f.mm);
	virtio_blk_destroy(f.blk);
	virtq_driver_destroy(f.drv);
	guest_memory_unref(f.mem);
	guest_region_unref(f.region);
	return 0;
}
