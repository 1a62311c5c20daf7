/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * kvm suite: interrupt controllers and notification fds.  In-kernel irqchip
 * state, PIT2, kvmclock, IRQ_LINE, KVM_SIGNAL_MSI, GSI routing, irqfd (with
 * resample), split irqchip with IOAPIC_EOI exits, ioeventfd (PIO and MMIO,
 * each width, with and without datamatch) and coalesced MMIO/PIO.
 *
 * Interrupt tests run the ring-3 guest (UC_IRQWAIT): its ring-0 handler
 * counts and EOIs the local APIC, and the ring-3 loop reports each new
 * count on GP_DONE.
 */
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cvmm-check.h"
#include "tvm.h"

#define APIC_SVR      0xf0
#define MSI_ADDR      0xfee00000ull
#define COUNT_TIMEOUT 0xffffffffu

static void pre_irqchip(struct tvm *t)
{
	ck_assert_int_eq(kvm_vm_create_irqchip(t->vm), 0);
}

static void pre_split(struct tvm *t)
{
	ck_assert_int_eq(kvm_vm_enable_split_irqchip(t->vm, 24), 0);
}

/* Software-enable the local APIC through KVM_GET/SET_LAPIC. */
static void lapic_enable(struct tvm *t)
{
	struct kvm_lapic_state l;
	uint32_t svr;

	ck_assert_int_eq(kvm_vcpu_get_lapic(t->vcpu, &l), 0);
	svr = 0x1ff; /* enable, spurious vector 0xff */
	memcpy(&l.regs[APIC_SVR], &svr, 4);
	ck_assert_int_eq(kvm_vcpu_set_lapic(t->vcpu, &l), 0);
	ck_assert_int_eq(kvm_vcpu_get_lapic(t->vcpu, &l), 0);
	memcpy(&svr, &l.regs[APIC_SVR], 4);
	ck_assert_uint_eq(svr & 0x100, 0x100);
}

static void irq_guest(struct tvm *t, void (*pre)(struct tvm *))
{
	tvm_init(t, TVM_RAM, pre);
	tvm_load(t, guest_user_start, guest_user_end);
	tvm_setup_long(t, t->vcpu, true, true, true, UC_IRQWAIT);
	lapic_enable(t);
}

/* Run until the guest reports a new interrupt count; return it. */
static uint32_t wait_count(struct tvm *t)
{
	uint32_t v = COUNT_TIMEOUT;
	int i;

	for (i = 0; i < 4 && v == COUNT_TIMEOUT; i++)
		v = tvm_expect_out(t, GP_DONE);
	return v;
}

static uint64_t efd_read(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, 8) != 8)
		return 0;
	return v;
}

START_TEST(irqchip_state_and_irq_line)
{
	struct kvm_irqchip chip, back;
	struct tvm t;
	unsigned i;

	tvm_init(&t, TVM_RAM, pre_irqchip);
	for (i = 0; i < 3; i++) {
		memset(&chip, 0, sizeof(chip));
		chip.chip_id = i;
		ck_assert_int_eq(kvm_vm_get_irqchip(t.vm, &chip), 0);
	}
	/* Program IOAPIC pin 3, read it back. */
	memset(&chip, 0, sizeof(chip));
	chip.chip_id = KVM_IRQCHIP_IOAPIC;
	ck_assert_int_eq(kvm_vm_get_irqchip(t.vm, &chip), 0);
	chip.chip.ioapic.redirtbl[3].bits = 0x45 | (1ull << 16); /* masked */
	ck_assert_int_eq(kvm_vm_set_irqchip(t.vm, &chip), 0);
	memset(&back, 0, sizeof(back));
	back.chip_id = KVM_IRQCHIP_IOAPIC;
	ck_assert_int_eq(kvm_vm_get_irqchip(t.vm, &back), 0);
	ck_assert_uint_eq(back.chip.ioapic.redirtbl[3].bits,
			  chip.chip.ioapic.redirtbl[3].bits);
	/* IRQ_LINE raises and lowers the (masked) pin's IRR bit. */
	ck_assert_int_eq(kvm_vm_irq_line(t.vm, 3, 1), 0);
	ck_assert_int_eq(kvm_vm_get_irqchip(t.vm, &back), 0);
	ck_assert_uint_eq(back.chip.ioapic.irr & (1u << 3), 1u << 3);
	ck_assert_int_eq(kvm_vm_irq_line(t.vm, 3, 0), 0);
	ck_assert_int_eq(kvm_vm_get_irqchip(t.vm, &back), 0);
	ck_assert_uint_eq(back.chip.ioapic.irr & (1u << 3), 0);
	chip.chip_id = 7;
	ck_assert_int_eq(kvm_vm_get_irqchip(t.vm, &chip), -EINVAL);
	tvm_fini(&t);
}
END_TEST

START_TEST(pit2_and_reinject)
{
	struct kvm_pit_state2 pit, back;
	struct tvm t;

	tvm_init(&t, TVM_RAM, pre_irqchip);
	ck_assert_int_eq(kvm_vm_create_pit2(t.vm, KVM_PIT_SPEAKER_DUMMY), 0);
	ck_assert_int_eq(kvm_vm_create_pit2(t.vm, 0), -EEXIST);
	ck_assert_int_eq(kvm_vm_get_pit2(t.vm, &pit), 0);
	pit.channels[2].count = 0x1234;
	pit.channels[2].mode = 2;
	ck_assert_int_eq(kvm_vm_set_pit2(t.vm, &pit), 0);
	ck_assert_int_eq(kvm_vm_get_pit2(t.vm, &back), 0);
	ck_assert_uint_eq(back.channels[2].count, 0x1234);
	ck_assert_uint_eq(back.channels[2].mode, 2);
	ck_assert_int_eq(kvm_vm_set_pit_reinject(t.vm, false), 0);
	ck_assert_int_eq(kvm_vm_set_pit_reinject(t.vm, true), 0);
	tvm_fini(&t);
}
END_TEST

START_TEST(kvmclock_get_set)
{
	struct kvm_clock_data c, d;
	struct tvm t;

	tvm_init(&t, TVM_RAM, NULL);
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(kvm_vm_get_clock(t.vm, &c), 0);
	memset(&d, 0, sizeof(d));
	d.clock = c.clock + 1000000000000ull; /* +1000 s */
	ck_assert_int_eq(kvm_vm_set_clock(t.vm, &d), 0);
	memset(&c, 0, sizeof(c));
	ck_assert_int_eq(kvm_vm_get_clock(t.vm, &c), 0);
	ck_assert_uint_ge(c.clock, d.clock);
	ck_assert_uint_lt(c.clock, d.clock + 60000000000ull);
	tvm_fini(&t);
}
END_TEST

static void *late_kick(void *arg)
{
	usleep(200 * 1000);
	kvm_vcpu_kick(arg);
	return NULL;
}

START_TEST(signal_msi_and_irqfd_deliver)
{
	struct kvm_gsi_routing *r;
	struct kvm_exit_info x;
	struct tvm t;
	pthread_t th;
	int efd;

	irq_guest(&t, pre_irqchip);
	/* KVM_SIGNAL_MSI: fixed delivery to APIC 0, vector 0x40. */
	ck_assert_int_gt(kvm_vm_signal_msi(t.vm, MSI_ADDR, 0x40, 0, 0), 0);
	ck_assert_uint_eq(wait_count(&t), 1);
	ck_assert_int_gt(kvm_vm_signal_msi(t.vm, MSI_ADDR, 0x40, 0, 0), 0);
	ck_assert_uint_eq(wait_count(&t), 2);
	/* irqfd on GSI 5, routed to an MSI with vector 0x41. */
	ck_assert_int_eq(kvm_gsi_routing_create(4, &r), 0);
	ck_assert_int_eq(kvm_gsi_routing_add_msi(r, 5, MSI_ADDR, 0x41, 0, 0),
			 0);
	ck_assert_int_eq(kvm_vm_set_gsi_routing(t.vm, r), 0);
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_ge(efd, 0);
	ck_assert_int_eq(kvm_vm_irqfd_assign(t.vm, efd, 5, -1), 0);
	ck_assert_int_eq(eventfd_write(efd, 1), 0);
	ck_assert_uint_eq(wait_count(&t), 3);
	ck_assert_int_eq(eventfd_write(efd, 1), 0);
	ck_assert_uint_eq(wait_count(&t), 4);
	/* Deassigned: a write no longer interrupts the guest. */
	ck_assert_int_eq(kvm_vm_irqfd_deassign(t.vm, efd, 5), 0);
	ck_assert_int_eq(eventfd_write(efd, 1), 0);
	ck_assert_int_eq(kvm_vcpu_kick_bind(t.vcpu, SIGUSR1), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, late_kick, t.vcpu), 0);
	/* (tvm_run_once, not tvm_run, which retries on KVM_EXIT_INTR) */
	do
		tvm_run_once(&t, &x);
	while (x.reason == KVM_EXIT_IO && tvm_io_value(&x) == COUNT_TIMEOUT);
	pthread_join(th, NULL);
	ck_assert_msg(x.reason == KVM_EXIT_INTR, "exit %s",
		      kvm_exit_reason_name(x.reason));
	ck_assert(x.kicked);
	ck_assert_uint_eq(tvm_irq_count(&t), 4);
	close(efd);
	kvm_gsi_routing_destroy(r);
	tvm_fini(&t);
}
END_TEST

/* Level-triggered IOAPIC pin through an irqfd with a resamplefd. */
START_TEST(irqfd_resample_level)
{
	struct kvm_gsi_routing *r;
	struct kvm_irqchip chip;
	struct pollfd p;
	struct tvm t;
	int efd, rfd;

	irq_guest(&t, pre_irqchip);
	memset(&chip, 0, sizeof(chip));
	chip.chip_id = KVM_IRQCHIP_IOAPIC;
	ck_assert_int_eq(kvm_vm_get_irqchip(t.vm, &chip), 0);
	/* pin 10: vector 0x42, fixed, physical dest 0, level, unmasked */
	chip.chip.ioapic.redirtbl[10].bits = 0x42 | (1ull << 15);
	ck_assert_int_eq(kvm_vm_set_irqchip(t.vm, &chip), 0);
	/* GSI 10 to IOAPIC pin 10 only: the default table also routes it to
	 * the (unprogrammed) PIC, whose ExtINT would reach the BSP too. */
	ck_assert_int_eq(kvm_gsi_routing_create(1, &r), 0);
	ck_assert_int_eq(
		kvm_gsi_routing_add_irqchip(r, 10, KVM_IRQCHIP_IOAPIC, 10), 0);
	ck_assert_int_eq(kvm_gsi_routing_add_irqchip(r, 11, KVM_IRQCHIP_IOAPIC,
						     11),
			 -ENOSPC);
	ck_assert_int_eq(kvm_vm_set_gsi_routing(t.vm, r), 0);
	kvm_gsi_routing_destroy(r);
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	rfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_ge(efd, 0);
	ck_assert_int_ge(rfd, 0);
	ck_assert_int_eq(kvm_vm_irqfd_assign(t.vm, efd, 10, rfd), 0);
	ck_assert_int_eq(eventfd_write(efd, 1), 0);
	ck_assert_uint_eq(wait_count(&t), 1);
	/* The guest's EOI de-asserted the line and signalled resamplefd. */
	p = (struct pollfd){.fd = rfd, .events = POLLIN};
	ck_assert_int_eq(poll(&p, 1, 2000), 1);
	ck_assert_uint_eq(efd_read(rfd), 1);
	/* Again: the line can be raised once more. */
	ck_assert_int_eq(eventfd_write(efd, 1), 0);
	ck_assert_uint_eq(wait_count(&t), 2);
	ck_assert_int_eq(poll(&p, 1, 2000), 1);
	ck_assert_uint_eq(efd_read(rfd), 1);
	ck_assert_int_eq(kvm_vm_irqfd_deassign(t.vm, efd, 10), 0);
	close(efd);
	close(rfd);
	tvm_fini(&t);
}
END_TEST

/* Split irqchip: a level MSI route makes the guest's EOI exit to us. */
START_TEST(split_irqchip_ioapic_eoi)
{
	struct kvm_gsi_routing *r;
	struct kvm_exit_info x;
	struct tvm t;
	int efd, i;

	irq_guest(&t, pre_split);
	ck_assert_int_eq(kvm_gsi_routing_create(2, &r), 0);
	/* vector 0x43, fixed, level-triggered (bit 15), asserted (bit 14) */
	ck_assert_int_eq(kvm_gsi_routing_add_msi(r, 5, MSI_ADDR,
						 0x43 | (1u << 15) | (1u << 14),
						 0, 0),
			 0);
	ck_assert_int_eq(kvm_vm_set_gsi_routing(t.vm, r), 0);
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_ge(efd, 0);
	ck_assert_int_eq(kvm_vm_irqfd_assign(t.vm, efd, 5, -1), 0);
	ck_assert_int_eq(eventfd_write(efd, 1), 0);
	for (i = 0; i < 8; i++) {
		tvm_run(&t, &x);
		if (x.reason != KVM_EXIT_IO ||
		    tvm_io_value(&x) != COUNT_TIMEOUT)
			break;
	}
	ck_assert_msg(x.reason == KVM_EXIT_IOAPIC_EOI, "exit %s",
		      kvm_exit_reason_name(x.reason));
	ck_assert_uint_eq(x.eoi_vector, 0x43);
	ck_assert_uint_eq(wait_count(&t), 1);
	close(efd);
	kvm_gsi_routing_destroy(r);
	tvm_fini(&t);
}
END_TEST

struct ioev {
	uint64_t addr;
	uint32_t len;
	uint32_t flags;
	uint64_t match;
	int fd;
};

START_TEST(ioeventfd_no_exit)
{
	struct ioev ev[] = {
		{GP_IOEVENT, 1, KVM_IOEVENTFD_FLAG_PIO, 0, -1},
		{GP_IOEVENT, 2,
		 KVM_IOEVENTFD_FLAG_PIO | KVM_IOEVENTFD_FLAG_DATAMATCH, 0x2222,
		 -1},
		{GP_IOEVENT, 4,
		 KVM_IOEVENTFD_FLAG_PIO | KVM_IOEVENTFD_FLAG_DATAMATCH,
		 0x44444444, -1},
		{GMMIO_BASE, 1, 0, 0, -1},
		{GMMIO_BASE, 2, KVM_IOEVENTFD_FLAG_DATAMATCH, 0x2222, -1},
		{GMMIO_BASE, 4, 0, 0, -1},
		{GMMIO_BASE, 8, KVM_IOEVENTFD_FLAG_DATAMATCH,
		 0x8888888888888888ull, -1},
	};
	const size_t n = sizeof(ev) / sizeof(ev[0]);
	struct kvm_exit_info x;
	struct kvm_regs regs;
	struct tvm t;
	size_t i;
	int fd;

	tvm_init(&t, TVM_RAM, NULL);
	tvm_load(&t, guest_user_start, guest_user_end);
	tvm_setup_long(&t, t.vcpu, true, false, true, UC_IOEVENT);
	ck_assert_int_eq(kvm_vcpu_get_regs(t.vcpu, &regs), 0);
	for (i = 0; i < n; i++) {
		ev[i].fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		ck_assert_int_ge(ev[i].fd, 0);
		ck_assert_int_eq(kvm_vm_ioeventfd_assign(
					 t.vm, ev[i].fd, ev[i].addr, ev[i].len,
					 ev[i].flags, ev[i].match),
				 0);
	}
	/* Seven guest writes, all absorbed by ioeventfds: the next exit is
	 * the guest's "done". */
	ck_assert_uint_eq(tvm_expect_out(&t, GP_DONE), 0);
	for (i = 0; i < n; i++)
		ck_assert_msg(efd_read(ev[i].fd) == 1, "ioeventfd %zu", i);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(kvm_vm_ioeventfd_deassign(
					 t.vm, ev[i].fd, ev[i].addr, ev[i].len,
					 ev[i].flags, ev[i].match),
				 0);

	/* A datamatch that does not match: the write exits as usual. */
	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ck_assert_int_eq(
		kvm_vm_ioeventfd_assign(t.vm, fd, GP_IOEVENT, 1,
					KVM_IOEVENTFD_FLAG_PIO |
						KVM_IOEVENTFD_FLAG_DATAMATCH,
					0x12),
		0);
	ck_assert_int_eq(kvm_vcpu_set_regs(t.vcpu, &regs), 0);
	tvm_run(&t, &x);
	ck_assert_uint_eq(x.reason, KVM_EXIT_IO);
	ck_assert_uint_eq(x.io.port, GP_IOEVENT);
	ck_assert_uint_eq(x.io.data[0], 0x11);
	ck_assert_uint_eq(efd_read(fd), 0);
	/* Bad arguments are refused before the kernel sees them. */
	ck_assert_int_eq(kvm_vm_ioeventfd_assign(t.vm, fd, 0, 3, 0, 0),
			 -EINVAL);
	ck_assert_int_eq(kvm_vm_ioeventfd_assign(t.vm, fd, 0, 4,
						 KVM_IOEVENTFD_FLAG_DEASSIGN,
						 0),
			 -EINVAL);
	close(fd);
	for (i = 0; i < n; i++)
		close(ev[i].fd);
	tvm_fini(&t);
}
END_TEST

START_TEST(coalesced_mmio_and_pio)
{
	struct kvm_coalesced_mmio e[8];
	struct tvm t;
	bool pio;
	int n, want;
	uint32_t v;

	tvm_init(&t, TVM_RAM, NULL);
	if (kvm_vm_check_extension(t.vm, KVM_CAP_COALESCED_MMIO) <= 0) {
		tvm_skip("coalesced_mmio_and_pio", "no KVM_CAP_COALESCED_MMIO");
		tvm_fini(&t);
		return;
	}
	pio = kvm_vm_check_extension(t.vm, KVM_CAP_COALESCED_PIO) > 0;
	if (!pio)
		tvm_skip("coalesced_pio", "no KVM_CAP_COALESCED_PIO");
	tvm_load(&t, guest_user_start, guest_user_end);
	tvm_setup_long(&t, t.vcpu, true, false, true, UC_COALESCED);
	ck_assert_int_eq(kvm_vm_register_coalesced(t.vm, GMMIO_COALESCED,
						   0x1000, false),
			 0);
	if (pio)
		ck_assert_int_eq(kvm_vm_register_coalesced(t.vm, GP_COALESCED,
							   1, true),
				 0);
	ck_assert_int_eq(kvm_vcpu_coalesced_drain(t.vcpu, e, 8), 0);
	if (pio) {
		ck_assert_uint_eq(tvm_expect_out(&t, GP_DONE), 0);
	} else {
		ck_assert_uint_eq(tvm_expect_out(&t, GP_COALESCED), 0x77);
		ck_assert_uint_eq(tvm_expect_out(&t, GP_COALESCED), 0x99);
		ck_assert_uint_eq(tvm_expect_out(&t, GP_DONE), 0);
	}
	want = pio ? 5 : 3;
	/* A partial drain consumes only what it returns; the rest follows in
	 * order. */
	ck_assert_int_eq(kvm_vcpu_coalesced_drain(t.vcpu, NULL, 0), 0);
	ck_assert_int_eq(kvm_vcpu_coalesced_drain(t.vcpu, NULL, 1), -EINVAL);
	ck_assert_int_eq(kvm_vcpu_coalesced_drain(t.vcpu, e, 2), 2);
	n = kvm_vcpu_coalesced_drain(t.vcpu, e + 2, 6);
	ck_assert_int_eq(n, want - 2);
	n += 2;
	ck_assert_uint_eq(e[0].phys_addr, GMMIO_COALESCED);
	ck_assert_uint_eq(e[0].len, 4);
	memcpy(&v, e[0].data, 4);
	ck_assert_uint_eq(v, 0xaabbccdd);
	ck_assert_uint_eq(e[1].phys_addr, GMMIO_COALESCED + 8);
	ck_assert_uint_eq(e[1].len, 2);
	ck_assert_uint_eq(e[2].phys_addr, GMMIO_COALESCED + 16);
	ck_assert_uint_eq(e[2].data[0], 0x56);
	if (pio) {
		ck_assert_uint_eq(e[3].phys_addr, GP_COALESCED);
		ck_assert_uint_eq(e[3].pio, 1);
		ck_assert_uint_eq(e[3].data[0], 0x77);
		ck_assert_uint_eq(e[4].data[0], 0x99);
	}
	ck_assert_int_eq(kvm_vcpu_coalesced_drain(t.vcpu, e, 8), 0);
	/* A ring index out of range is refused, not followed. */
	{
		struct kvm_coalesced_mmio_ring *ring =
			(void *)((char *)kvm_vcpu_run_struct(t.vcpu) +
				 4096 * kvm_vm_check_extension(
						t.vm, KVM_CAP_COALESCED_MMIO));
		uint32_t first = ring->first;

		uint32_t last = ring->last;
		/* entries in the page, as KVM_COALESCED_MMIO_MAX */
		const uint32_t max = (4096 - sizeof(*ring)) /
				     sizeof(struct kvm_coalesced_mmio);

		ck_assert_uint_eq(first, last);
		ring->first = 100000;
		ck_assert_int_eq(kvm_vcpu_coalesced_drain(t.vcpu, e, 8),
				 -EPROTO);
		ring->first = max; /* one past the end */
		ck_assert_int_eq(kvm_vcpu_coalesced_drain(t.vcpu, e, 8),
				 -EPROTO);
		ring->first = first;
		ring->last = max;
		ck_assert_int_eq(kvm_vcpu_coalesced_drain(t.vcpu, e, 8),
				 -EPROTO);
		/* last just inside the ring: entries up to it are drained,
		 * wrapping, and first never leaves the ring. */
		ring->first = max - 1;
		ring->last = 1;
		ck_assert_int_eq(kvm_vcpu_coalesced_drain(t.vcpu, e, 8), 2);
		ck_assert_uint_eq(ring->first, 1);
		ring->first = first;
		ring->last = last;
		ck_assert_int_eq(kvm_vcpu_coalesced_drain(t.vcpu, e, 8), 0);
	}
	ck_assert_int_eq(kvm_vm_unregister_coalesced(t.vm, GMMIO_COALESCED,
						     0x1000, false),
			 0);
	if (pio)
		ck_assert_int_eq(kvm_vm_unregister_coalesced(t.vm, GP_COALESCED,
							     1, true),
				 0);
	tvm_fini(&t);
}
END_TEST

static Suite *irq_suite(void)
{
	Suite *s = suite_create("kvm-irq");
	TCase *tc = tcase_create("irq");

	tcase_add_test(tc, irqchip_state_and_irq_line);
	tcase_add_test(tc, pit2_and_reinject);
	tcase_add_test(tc, kvmclock_get_set);
	tcase_add_test(tc, signal_msi_and_irqfd_deliver);
	tcase_add_test(tc, irqfd_resample_level);
	tcase_add_test(tc, split_irqchip_ioapic_eoi);
	tcase_add_test(tc, ioeventfd_no_exit);
	tcase_add_test(tc, coalesced_mmio_and_pio);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	int r;

	tvm_skips_init();
	r = cvmm_check_run(irq_suite(), true);
	if (tvm_skips())
		printf("%d capability test(s) skipped by name (see SKIP "
		       "lines)\n",
		       tvm_skips());
	return r;
}
