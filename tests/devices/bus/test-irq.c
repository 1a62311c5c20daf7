/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Unit tests for irq lines, MSI sinks and event notifiers. */
#include "cvmm-check.h"
#include "irq-recorder.h"

#include <cvmm/devices/irq.h>

#include <poll.h>

START_TEST(test_irq_line_recorder)
{
	struct irq_recorder rec;
	struct irq_line line = irq_recorder_line(&rec);

	ck_assert(irq_line_connected(&line));
	ck_assert_int_eq(irq_line_assert(&line), 0);
	ck_assert(rec.level);
	ck_assert_int_eq(irq_line_assert(&line), 0);
	ck_assert_uint_eq(rec.asserts, 1);
	ck_assert_uint_eq(rec.sets, 2);
	ck_assert_int_eq(irq_line_deassert(&line), 0);
	ck_assert(!rec.level);
	ck_assert_uint_eq(rec.deasserts, 1);
	ck_assert_int_eq(irq_line_pulse(&line), 0);
	ck_assert_uint_eq(rec.pulses, 1);
	rec.ret = -EIO;
	ck_assert_int_eq(irq_line_set(&line, true), -EIO);
}
END_TEST

START_TEST(test_irq_line_unconnected)
{
	struct irq_line zero = {0};

	ck_assert(!irq_line_connected(NULL));
	ck_assert(!irq_line_connected(&zero));
	ck_assert_int_eq(irq_line_assert(NULL), 0);
	ck_assert_int_eq(irq_line_assert(&zero), 0);
	ck_assert_int_eq(irq_line_pulse(&zero), 0);
	ck_assert_int_eq(irq_line_pulse(NULL), 0);
}
END_TEST

START_TEST(test_irq_line_pulse_fallback)
{
	struct irq_recorder rec;
	struct irq_line line = irq_recorder_line(&rec);

	line.pulse = NULL;
	ck_assert_int_eq(irq_line_pulse(&line), 0);
	ck_assert_uint_eq(rec.asserts, 1);
	ck_assert_uint_eq(rec.deasserts, 1);
	ck_assert(!rec.level);
	ck_assert_uint_eq(rec.pulses, 0);
}
END_TEST

START_TEST(test_msi_sink_recorder)
{
	struct msi_recorder m;
	struct msi_sink s = msi_recorder_sink(&m);
	struct msi_sink zero = {0};

	ck_assert(msi_sink_connected(&s));
	ck_assert(!msi_sink_connected(&zero));
	ck_assert(!msi_sink_connected(NULL));
	ck_assert_int_eq(msi_sink_send(&s, 0xfee00000, 0x4021), 0);
	ck_assert_int_eq(msi_sink_send(&s, 0xfee01000, 0x22), 0);
	ck_assert_uint_eq(m.count, 2);
	ck_assert_uint_eq(m.address[0], 0xfee00000);
	ck_assert_uint_eq(m.data[0], 0x4021);
	ck_assert_uint_eq(m.last_address, 0xfee01000);
	ck_assert_uint_eq(m.last_data, 0x22);
	ck_assert_int_eq(msi_sink_send(&zero, 1, 2), 0);
	ck_assert_int_eq(msi_sink_send(NULL, 1, 2), 0);
}
END_TEST

START_TEST(test_notifier_signal_consume)
{
	struct event_notifier *n = NULL;

	ck_assert_int_eq(event_notifier_create(0, &n), 0);
	ck_assert_int_ge(event_notifier_fd(n), 0);
	ck_assert_int_eq(event_notifier_consume(n), 0);
	ck_assert_int_eq(event_notifier_signal(n), 0);
	ck_assert_int_eq(event_notifier_signal(n), 0);
	ck_assert_int_eq(event_notifier_signal(n), 0);
	ck_assert_int_eq(event_notifier_consume(n), 3);
	ck_assert_int_eq(event_notifier_consume(n), 0);
	event_notifier_destroy(n);
	event_notifier_destroy(NULL);
}
END_TEST

START_TEST(test_notifier_semaphore)
{
	struct event_notifier *n = NULL;

	ck_assert_int_eq(event_notifier_create(EVENT_NOTIFIER_SEMAPHORE, &n),
			 0);
	ck_assert_int_eq(event_notifier_signal(n), 0);
	ck_assert_int_eq(event_notifier_signal(n), 0);
	ck_assert_int_eq(event_notifier_consume(n), 1);
	ck_assert_int_eq(event_notifier_consume(n), 1);
	ck_assert_int_eq(event_notifier_consume(n), 0);
	event_notifier_destroy(n);
}
END_TEST

START_TEST(test_notifier_errors)
{
	struct event_notifier *n = (void *)1;

	ck_assert_int_eq(event_notifier_create(0, NULL), -EINVAL);
	ck_assert_int_eq(event_notifier_create(0x80, &n), -EINVAL);
	ck_assert_ptr_null(n);
	ck_assert_int_eq(event_notifier_fd(NULL), -EINVAL);
	ck_assert_int_eq(event_notifier_signal(NULL), -EINVAL);
	ck_assert_int_eq(event_notifier_consume(NULL), -EINVAL);
	ck_assert_int_eq(event_notifier_wait(NULL, 0), -EINVAL);
	ck_assert_int_eq(irq_line_from_notifier(NULL, NULL), -EINVAL);
	ck_assert_int_eq(msi_sink_from_notifier(NULL, NULL), -EINVAL);
}
END_TEST

START_TEST(test_notifier_wait_timeout)
{
	struct event_notifier *n = NULL;
	struct pollfd pfd;

	ck_assert_int_eq(event_notifier_create(0, &n), 0);
	ck_assert_int_eq(event_notifier_wait(n, 0), 0);
	ck_assert_int_eq(event_notifier_wait(n, 20), 0);
	ck_assert_int_eq(event_notifier_signal(n), 0);
	/* the fd is pollable by a VMM's event loop */
	pfd.fd = event_notifier_fd(n);
	pfd.events = POLLIN;
	ck_assert_int_eq(poll(&pfd, 1, 0), 1);
	ck_assert_int_eq(event_notifier_wait(n, -1), 1);
	event_notifier_destroy(n);
}
END_TEST

START_TEST(test_notifier_as_irq_line_and_msi)
{
	struct event_notifier *n = NULL;
	struct irq_line line;
	struct msi_sink sink;

	ck_assert_int_eq(event_notifier_create(0, &n), 0);
	ck_assert_int_eq(irq_line_from_notifier(&line, n), 0);
	ck_assert_int_eq(msi_sink_from_notifier(&sink, n), 0);
	ck_assert_int_eq(irq_line_assert(&line), 0);
	ck_assert_int_eq(irq_line_deassert(&line), 0); /* no signal */
	ck_assert_int_eq(irq_line_pulse(&line), 0);
	ck_assert_int_eq(msi_sink_send(&sink, 0xfee00000, 0x30), 0);
	ck_assert_int_eq(event_notifier_consume(n), 3);
	event_notifier_destroy(n);
}
END_TEST

static Suite *irq_suite(void)
{
	Suite *s = suite_create("irq");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_irq_line_recorder);
	tcase_add_test(tc, test_irq_line_unconnected);
	tcase_add_test(tc, test_irq_line_pulse_fallback);
	tcase_add_test(tc, test_msi_sink_recorder);
	tcase_add_test(tc, test_notifier_signal_consume);
	tcase_add_test(tc, test_notifier_semaphore);
	tcase_add_test(tc, test_notifier_errors);
	tcase_add_test(tc, test_notifier_wait_timeout);
	tcase_add_test(tc, test_notifier_as_irq_line_and_msi);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cvmm_check_run(irq_suite(), false);
}
