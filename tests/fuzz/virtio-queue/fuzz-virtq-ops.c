/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Fuzz target: operation sequences on a well-behaved mock driver and the
 * device queue.  Each input byte picks a driver or device call; the target
 * checks invariants that must hold for every interleaving:
 *  - the queue never breaks (the driver follows the protocol);
 *  - the device pops chains in the order the driver made them available,
 *    with exactly the buffers the driver added;
 *  - no head is in flight twice; every used id the driver receives was
 *    popped and completed by the device, with the length the device gave;
 *  - no lost kick: after virtq_enable_notification() returned false, the
 *    driver's next publication asks for a kick;
 *  - no lost interrupt: a completion after the driver re-enabled
 *    interrupts asks for one;
 *  - save/restore and undo keep all of the above.
 * Bit 1 of the second byte runs the packed layout (driver and device).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cvmm/virtio-queue-driver.h>
#include <cvmm/virtio-queue.h>
#include <cvmm/vm-memory.h>

#include "test-memory.h"

#define MEM_SIZE 0x40000ull
#define DATA	 0x10000ull
#define TABLES	 0x30000ull
#define MAXQ	 64u

#define check(x)                 \
	do {                     \
		if (!(x))        \
			abort(); \
	} while (0)

struct expect {
	uint16_t nbufs, nread;
	uint32_t rlen, wlen;
};

struct model {
	struct expect exp[MAXQ]; /* per head, as added by the driver */
	uint16_t fifo[MAXQ];	 /* heads added, not yet popped */
	unsigned int fifo_head, fifo_n;
	uint8_t in_flight[MAXQ]; /* popped by the device */
	uint8_t completed[MAXQ]; /* add_used done, driver not yet seen */
	uint32_t used_len[MAXQ];
	uint8_t restored[MAXQ]; /* in flight across a save/restore */
	bool device_waiting;	/* enable_notification() said "empty" */
	bool driver_wants_irq;	/* interrupts re-enabled, none raised */
	unsigned int table_rot;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guest_memory *m;
	struct virtq_driver *d = NULL;
	struct virtq *q = NULL;
	struct virtq_state *st = NULL;
	struct model md;
	static struct virtq_buf cbufs[MAXQ], bbufs[8][MAXQ];
	struct virtq_chain c, last, cs[8];
	bool have_last = false;
	uint64_t features;
	guest_addr_t da, aa, ua;
	uint32_t qsize;
	size_t i;

	if (size < 2)
		return 0;
	memset(&md, 0, sizeof(md));
	m = CVMM_TEST_MEMORY({.gpa = 0, .size = MEM_SIZE});
	qsize = 1u << (data[0] % 7); /* 1..64 */
	features = (data[1] & 1 ? 1ull << VIRTIO_RING_F_EVENT_IDX : 0) |
		   (1ull << VIRTIO_RING_F_INDIRECT_DESC) |
		   (data[1] & 2 ? 1ull << 34 /* VIRTIO_F_RING_PACKED */ : 0);
	if ((data[1] & 6) == 6) /* packed: any size (virtio 1.2, 2.8) */
		qsize = 1 + data[0] % 64;
	virtq_driver_layout(qsize, 0, &da, &aa, &ua);
	check(virtq_driver_create(m, qsize, features, da, aa, ua, &d) == 0);
	check(virtq_create(MAXQ, &q) == 0);
	check(virtq_set_memory(q, m) == 0);
	check(virtq_driver_configure(d, q) == 0);
	st = malloc(sizeof(*st));
	check(st);
	virtq_chain_init(&c, cbufs, MAXQ);
	for (i = 0; i < 8; i++)
		virtq_chain_init(&cs[i], bbufs[i], MAXQ);

	for (i = 2; i < size; i++) {
		uint8_t op = data[i] % 11, arg = data[i] / 11;
		struct virtq_driver_buf b[4];
		unsigned int n, k, nr;
		uint16_t head;
		int ret;

		switch (op) {
		case 0: /* driver: add a direct chain */
		case 1: /* driver: add an indirect chain */
			n = 1 + arg % 4;
			nr = (arg / 4) % (n + 1);
			for (k = 0; k < n; k++) {
				b[k].addr = DATA + 0x1000ull * k + arg;
				b[k].len = 1 + ((arg * 37u + k * 101u) % 300);
				b[k].flags = k < nr ? 0 : VRING_DESC_F_WRITE;
			}
			if (op == 0) {
				ret = virtq_driver_add(d, b, n, &head);
			} else {
				/* A table is reused only after 2 * qsize
				 * successful adds: by then (at most qsize
				 * chains outstanding, popped in order) the
				 * device has popped the chain that used it. */
				guest_addr_t t =
					TABLES +
					64ull * (md.table_rot % (2 * qsize));

				ret = virtq_driver_add_indirect(d, b, n, t,
								&head);
				if (ret == 0)
					md.table_rot++;
			}
			if (ret == -ENOSPC)
				break;
			if (n > qsize) { /* more buffers than the size */
				check(ret == -EINVAL);
				break;
			}
			check(ret == 0);
			check(head < qsize);
			md.exp[head].nbufs = (uint16_t)n;
			md.exp[head].nread = (uint16_t)nr;
			md.exp[head].rlen = md.exp[head].wlen = 0;
			for (k = 0; k < n; k++) {
				if (k < nr)
					md.exp[head].rlen += b[k].len;
				else
					md.exp[head].wlen += b[k].len;
			}
			check(md.fifo_n < qsize);
			md.fifo[(md.fifo_head + md.fifo_n++) % MAXQ] = head;
			/* No lost kick. */
			if (virtq_driver_needs_kick(d))
				md.device_waiting = false;
			else
				check(!md.device_waiting);
			break;
		case 2: /* device: pop one, read it, write some */
		case 3: {
			uint8_t buf[1200];

			ret = virtq_pop(q, &c);
			check(ret == 0 || ret == 1);
			if (ret == 0) {
				check(md.fifo_n == 0);
				break;
			}
			check(md.fifo_n > 0);
			head = md.fifo[md.fifo_head];
			md.fifo_head = (md.fifo_head + 1) % MAXQ;
			md.fifo_n--;
			check(c.head == head);
			check(!md.in_flight[head] && !md.completed[head]);
			check(c.nbufs == md.exp[head].nbufs);
			check(c.nread == md.exp[head].nread);
			check(c.read_len == md.exp[head].rlen);
			check(c.write_len == md.exp[head].wlen);
			check(virtq_chain_read(&c, buf, sizeof(buf)) ==
			      (ssize_t)md.exp[head].rlen);
			memset(buf, arg, sizeof(buf));
			check(virtq_chain_write(&c, buf, arg) ==
			      (ssize_t)(arg < c.write_len ? arg : c.write_len));
			md.in_flight[head] = 1;
			md.used_len[head] = virtq_chain_written(&c);
			last = c;
			have_last = true;
			break;
		}
		case 4: /* device: complete one in-flight chain */
			for (k = 0; k < MAXQ; k++) {
				head = (uint16_t)((arg + k) % MAXQ);
				if (md.in_flight[head])
					break;
			}
			if (k == MAXQ) {
				check(virtq_add_used(q, arg % MAXQ, 0) ==
				      -EINVAL);
				break;
			}
			/* Sometimes a length beyond the chain: it must come
			 * back bounded by the chain's writable total (for a
			 * head restored in flight the bound is recomputed
			 * from descriptors a reused table may have changed,
			 * so only the exact length is modelled there). */
			if (!md.restored[head] && (arg & 1)) {
				uint32_t len =
					md.used_len[head] + 1 + arg * 50u;

				check(virtq_add_used(q, head, len) == 0);
				md.used_len[head] = len < md.exp[head].wlen
							    ? len
							    : md.exp[head].wlen;
			} else {
				check(virtq_add_used(q, head,
						     md.used_len[head]) == 0);
			}
			md.in_flight[head] = 0;
			md.restored[head] = 0;
			md.completed[head] = 1;
			if (virtq_needs_interrupt(q))
				md.driver_wants_irq = false;
			else
				check(!md.driver_wants_irq);
			break;
		case 5: { /* device: complete everything as one batch */
			struct vring_used_elem e[MAXQ];

			n = 0;
			for (k = 0; k < MAXQ; k++) {
				if (!md.in_flight[k])
					continue;
				e[n].id = k;
				e[n].len = md.used_len[k];
				n++;
				md.in_flight[k] = 0;
				md.restored[k] = 0;
				md.completed[k] = 1;
			}
			check(virtq_add_used_batch(q, e, n) == 0);
			if (n && virtq_needs_interrupt(q))
				md.driver_wants_irq = false;
			else if (n)
				check(!md.driver_wants_irq);
			break;
		}
		case 6: { /* driver: consume used elements */
			struct vring_used_elem e;

			while ((ret = virtq_driver_get_used(d, &e)) == 1) {
				check(e.id < qsize && md.completed[e.id]);
				check(e.len == md.used_len[e.id]);
				md.completed[e.id] = 0;
			}
			check(ret == 0);
			break;
		}
		case 7: /* device: notification dance */
			if (arg & 1) {
				virtq_disable_notification(q);
				md.device_waiting = false;
			} else {
				bool more = virtq_enable_notification(q);

				check(more == (md.fifo_n > 0));
				md.device_waiting = !more;
			}
			break;
		case 8: /* driver: interrupts on/off */
			if (arg & 1) {
				check(virtq_driver_disable_interrupts(d) == 0);
				md.driver_wants_irq = false;
			} else {
				struct vring_used_elem e;

				check(virtq_driver_enable_interrupts(d) == 0);
				/* Like virtqueue_enable_cb(): re-check after
				 * enabling; if nothing is pending, the next
				 * completion must interrupt. */
				md.driver_wants_irq = true;
				ret = virtq_driver_get_used(d, &e);
				check(ret == 0 || ret == 1);
				if (ret == 1) {
					check(md.completed[e.id]);
					check(e.len == md.used_len[e.id]);
					md.completed[e.id] = 0;
					md.driver_wants_irq = false;
				}
			}
			break;
		case 9: /* save / restore through the state struct */
			virtq_save(q, st);
			check(st->in_flight == virtq_in_flight(q));
			check(virtq_restore(q, st) == 0);
			for (k = 0; k < MAXQ; k++)
				if (md.in_flight[k])
					md.restored[k] = 1;
			have_last = false;
			break;
		case 10: /* device: undo the last pop, or pop a batch */
			if (arg & 1) {
				int got = virtq_pop_batch(q, cs, 1 + arg % 8);

				check(got >= 0);
				for (k = 0; k < (unsigned int)got; k++) {
					head = md.fifo[md.fifo_head];
					md.fifo_head =
						(md.fifo_head + 1) % MAXQ;
					md.fifo_n--;
					check(cs[k].head == head);
					check(cs[k].write_len ==
					      md.exp[head].wlen);
					check(!md.in_flight[head]);
					md.in_flight[head] = 1;
					md.used_len[head] = 0;
				}
				have_last = false;
				break;
			}
			if (!have_last)
				break;
			have_last = false;
			if (!md.in_flight[last.head] ||
			    virtq_undo_pop(q, &last) != 0)
				break;
			md.in_flight[last.head] = 0;
			md.fifo_head = (md.fifo_head + MAXQ - 1) % MAXQ;
			md.fifo[md.fifo_head] = last.head;
			md.fifo_n++;
			break;
		}
		check(!virtq_is_broken(q));
		check(virtq_in_flight(q) <= qsize);
	}
	virtq_destroy(q);
	virtq_driver_destroy(d);
	guest_memory_unref(m);
	free(st);
	return 0;
}
