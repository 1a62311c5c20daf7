/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Unit tests for the MC146818 CMOS RTC model. */
#include "cvmm-check.h"
#include "irq-recorder.h"

#include <cvmm/devices/bus.h>
#include <cvmm/devices/rtc.h>

#include <time.h>

#define NS 1000000000ll

/* 2024-02-29 13:45:56 UTC, a Thursday */
#define T0 1709214356ll

static int64_t fake_ns;
static struct cmos_rtc *rtc;
static struct irq_recorder rec;

static int64_t fake_step; /* ns the clock moves per reading (exit cost) */

static int64_t fake_clock(void *opaque)
{
	int64_t v = fake_ns;

	(void)opaque;
	fake_ns += fake_step;
	return v;
}

static void setup(void)
{
	struct cmos_rtc_config cfg = {fake_clock, NULL,
				      irq_recorder_line(&rec)};

	fake_ns = T0 * NS + 500000000ll;
	fake_step = 0;
	ck_assert_int_eq(cmos_rtc_create(&cfg, &rtc), 0);
}

static void teardown(void)
{
	cmos_rtc_destroy(rtc);
	rtc = NULL;
}

static uint8_t rd(uint8_t reg)
{
	cmos_rtc_write_index(rtc, reg);
	return cmos_rtc_read_data(rtc);
}

static void wr(uint8_t reg, uint8_t v)
{
	cmos_rtc_write_index(rtc, reg);
	cmos_rtc_write_data(rtc, v);
}

START_TEST(test_rtc_create_errors)
{
	ck_assert_int_eq(cmos_rtc_create(NULL, NULL), -EINVAL);
	cmos_rtc_destroy(NULL);
	ck_assert_uint_eq(cmos_rtc_read_data(NULL), 0xff);
	cmos_rtc_write_data(NULL, 1);
	cmos_rtc_write_index(NULL, 1);
	ck_assert(!cmos_rtc_nmi_disabled(NULL));
	ck_assert_uint_eq(cmos_rtc_get_byte(NULL, 0x40), 0xff);
	cmos_rtc_set_byte(NULL, 0x40, 1);
	ck_assert_int_eq(cmos_rtc_poll(NULL), -EINVAL);
	ck_assert(!cmos_rtc_irq_level(NULL));
	ck_assert_int_eq(cmos_rtc_offset_seconds(NULL), 0);
}
END_TEST

static uint8_t to_bcd(unsigned v)
{
	return (uint8_t)((v / 10) << 4 | (v % 10));
}

/* NULL and a zeroed config are the defaults: the host's CLOCK_REALTIME
 * (the year and century registers read the host's UTC year, in BCD), no
 * line, no interrupt enabled. */
START_TEST(test_rtc_null_and_zero_config)
{
	struct cmos_rtc_config zero = {0};
	struct cmos_rtc *r[2];
	time_t now = time(NULL);
	struct tm tm;
	unsigned year;

	gmtime_r(&now, &tm);
	year = (unsigned)tm.tm_year + 1900;
	ck_assert_int_eq(cmos_rtc_create(NULL, &r[0]), 0);
	ck_assert_int_eq(cmos_rtc_create(&zero, &r[1]), 0);
	for (unsigned i = 0; i < 2; i++) {
		cmos_rtc_write_index(r[i], 0x09);
		ck_assert_uint_eq(cmos_rtc_read_data(r[i]), to_bcd(year % 100));
		cmos_rtc_write_index(r[i], 0x32);
		ck_assert_uint_eq(cmos_rtc_read_data(r[i]), to_bcd(year / 100));
		ck_assert_int_eq(cmos_rtc_offset_seconds(r[i]), 0);
		ck_assert_int_eq(cmos_rtc_poll(r[i]), -1); /* nothing enabled */
		ck_assert(!cmos_rtc_irq_level(r[i]));
		cmos_rtc_destroy(r[i]);
	}
}
END_TEST

START_TEST(test_rtc_bcd_24h)
{
	ck_assert_uint_eq(rd(0x0b), 0x02);
	ck_assert_uint_eq(rd(0x00), 0x56);
	ck_assert_uint_eq(rd(0x02), 0x45);
	ck_assert_uint_eq(rd(0x04), 0x13);
	ck_assert_uint_eq(rd(0x06), 0x05); /* Thursday = 5 (Sunday = 1) */
	ck_assert_uint_eq(rd(0x07), 0x29);
	ck_assert_uint_eq(rd(0x08), 0x02);
	ck_assert_uint_eq(rd(0x09), 0x24);
	ck_assert_uint_eq(rd(0x32), 0x20);
}
END_TEST

START_TEST(test_rtc_binary_mode)
{
	wr(0x0b, 0x06);
	ck_assert_uint_eq(rd(0x00), 56);
	ck_assert_uint_eq(rd(0x02), 45);
	ck_assert_uint_eq(rd(0x04), 13);
	ck_assert_uint_eq(rd(0x07), 29);
	ck_assert_uint_eq(rd(0x09), 24);
	ck_assert_uint_eq(rd(0x32), 20);
}
END_TEST

START_TEST(test_rtc_12h_mode)
{
	wr(0x0b, 0x00);			   /* BCD, 12 h */
	ck_assert_uint_eq(rd(0x04), 0x81); /* 1 PM */
	fake_ns -= 13 * 3600 * NS;	   /* 00:45 */
	ck_assert_uint_eq(rd(0x04), 0x12); /* 12 AM */
	fake_ns += 12 * 3600 * NS;	   /* 12:45 */
	ck_assert_uint_eq(rd(0x04), 0x92); /* 12 PM */
	wr(0x0b, 0x04);			   /* binary, 12 h */
	ck_assert_uint_eq(rd(0x04), 0x80 | 12);
}
END_TEST

START_TEST(test_rtc_clock_advances)
{
	ck_assert_uint_eq(rd(0x00), 0x56);
	fake_ns += 5 * NS;
	ck_assert_uint_eq(rd(0x00), 0x01);
	ck_assert_uint_eq(rd(0x02), 0x46);
}
END_TEST

START_TEST(test_rtc_uip_window)
{
	fake_ns = T0 * NS + 999800000ll; /* 200 us before the tick */
	ck_assert_uint_eq(rd(0x0a) & 0x80, 0x80);
	fake_ns = T0 * NS + 999700000ll; /* 300 us before */
	ck_assert_uint_eq(rd(0x0a) & 0x80, 0);
	ck_assert_uint_eq(rd(0x0a), 0x26);
	/* updates inhibited while SET: never in progress */
	wr(0x0b, 0x82);
	fake_ns = T0 * NS + 999900000ll;
	ck_assert_uint_eq(rd(0x0a) & 0x80, 0);
}
END_TEST

START_TEST(test_rtc_reg_a_writable_uip_read_only)
{
	wr(0x0a, 0xa0);
	ck_assert_uint_eq(rd(0x0a), 0x20);
	ck_assert_uint_eq(cmos_rtc_get_byte(rtc, 0x0a), 0x20);
}
END_TEST

START_TEST(test_rtc_reg_d_valid)
{
	ck_assert_uint_eq(rd(0x0d), 0x80);
	wr(0x0d, 0x00);
	ck_assert_uint_eq(rd(0x0d), 0x80);
}
END_TEST

START_TEST(test_rtc_reg_c_update_flag)
{
	(void)rd(0x0c);
	ck_assert_uint_eq(rd(0x0c), 0x00);
	fake_ns += NS;
	ck_assert_uint_eq(rd(0x0c), 0x10);
	ck_assert_uint_eq(rd(0x0c), 0x00); /* cleared by reading */
	wr(0x0b, 0x12);			   /* UIE */
	fake_ns += NS;
	ck_assert_uint_eq(rd(0x0c), 0x90);
	wr(0x0c, 0xff); /* read-only */
	ck_assert_uint_eq(rd(0x0c), 0x00);
}
END_TEST

START_TEST(test_rtc_set_time)
{
	/* Linux's mc146818_set_time: SET, write fields, clear SET */
	wr(0x0b, 0x82);
	wr(0x00, 0x30);
	wr(0x02, 0x15);
	wr(0x04, 0x08);
	wr(0x07, 0x01);
	wr(0x08, 0x01);
	wr(0x09, 0x30);
	wr(0x32, 0x20);
	/* frozen while SET: what was written reads back */
	fake_ns += 10 * NS;
	ck_assert_uint_eq(rd(0x00), 0x30);
	wr(0x0b, 0x02);
	/* 2030-01-01 08:15:30 */
	ck_assert_int_eq(cmos_rtc_offset_seconds(rtc),
			 1893485730ll - (T0 + 10));
	ck_assert_uint_eq(rd(0x09), 0x30);
	ck_assert_uint_eq(rd(0x04), 0x08);
	fake_ns += 2 * NS;
	ck_assert_uint_eq(rd(0x00), 0x32);
	ck_assert_uint_eq(rd(0x06), 0x03); /* a Tuesday */
}
END_TEST

START_TEST(test_rtc_set_time_binary_12h)
{
	wr(0x0b, 0x80 | 0x04); /* SET, binary, 12 h */
	wr(0x04, 0x80 | 11);   /* 11 PM */
	wr(0x02, 0);
	wr(0x00, 0);
	wr(0x07, 31);
	wr(0x08, 12);
	wr(0x09, 99);
	wr(0x32, 19);
	wr(0x0b, 0x04);
	/* 1999-12-31 23:00:00 */
	ck_assert_int_eq(cmos_rtc_offset_seconds(rtc), 946681200ll - T0);
	ck_assert_uint_eq(rd(0x04), 0x80 | 11);
}
END_TEST

START_TEST(test_rtc_write_field_running)
{
	wr(0x02, 0x10); /* minutes := 10 while running */
	ck_assert_uint_eq(rd(0x02), 0x10);
	ck_assert_uint_eq(rd(0x04), 0x13);
	ck_assert_int_eq(cmos_rtc_offset_seconds(rtc), -35 * 60);
}
END_TEST

START_TEST(test_rtc_cmos_ram)
{
	for (unsigned i = 0x0e; i < CMOS_RTC_SIZE; i++)
		if (i != 0x32)
			wr((uint8_t)i, (uint8_t)(i ^ 0xa5));
	for (unsigned i = 0x0e; i < CMOS_RTC_SIZE; i++)
		if (i != 0x32)
			ck_assert_uint_eq(rd((uint8_t)i), (uint8_t)(i ^ 0xa5));
	/* alarm registers are storage */
	wr(0x01, 0x59);
	ck_assert_uint_eq(rd(0x01), 0x59);
	cmos_rtc_set_byte(rtc, 0x40, 0x77);
	ck_assert_uint_eq(rd(0x40), 0x77);
}
END_TEST

START_TEST(test_rtc_nmi_bit)
{
	ck_assert(!cmos_rtc_nmi_disabled(rtc));
	cmos_rtc_write_index(rtc, 0x8f);
	ck_assert(cmos_rtc_nmi_disabled(rtc));
	cmos_rtc_write_data(rtc, 0x42); /* index is 0x0f, not 0x8f */
	ck_assert_uint_eq(cmos_rtc_get_byte(rtc, 0x0f), 0x42);
	cmos_rtc_write_index(rtc, 0x0f);
	ck_assert(!cmos_rtc_nmi_disabled(rtc));
}
END_TEST

START_TEST(test_hostile_rtc_index_bounded)
{
	cmos_rtc_write_index(rtc, 0xff); /* NMI off, index 0x7f */
	cmos_rtc_write_data(rtc, 0x99);
	ck_assert_uint_eq(cmos_rtc_get_byte(rtc, 0x7f), 0x99);
	ck_assert_uint_eq(cmos_rtc_read_data(rtc), 0x99);
	/* VMM accessors wrap instead of overrunning */
	cmos_rtc_set_byte(rtc, 1000, 0x11);
	ck_assert_uint_eq(cmos_rtc_get_byte(rtc, 1000 % 128), 0x11);
	ck_assert_uint_eq(cmos_rtc_get_byte(rtc, 1000), 0x11);
}
END_TEST

START_TEST(test_hostile_rtc_garbage_time)
{
	wr(0x0b, 0x82);
	for (uint8_t r = 0; r <= 9; r++)
		wr(r, 0xff);
	wr(0x32, 0xff);
	wr(0x0b, 0x02);
	/* whatever the guest wrote, reads are valid BCD fields */
	for (unsigned i = 0; i < 3; i++) {
		uint8_t s = rd(0x00), m = rd(0x02), h = rd(0x04);

		ck_assert_uint_le(s & 0x0f, 9);
		ck_assert_uint_le(s >> 4, 5);
		ck_assert_uint_le(m >> 4, 5);
		ck_assert_uint_le(h, 0x23);
		ck_assert_uint_ge(rd(0x08), 1);
		ck_assert_uint_le(rd(0x08), 0x12);
		fake_ns += 3600 * NS;
	}
	/* binary garbage too */
	wr(0x0b, 0x86);
	for (uint8_t r = 0; r <= 9; r++)
		wr(r, 0xff);
	wr(0x0b, 0x06);
	ck_assert_uint_le(rd(0x00), 59);
	ck_assert_uint_le(rd(0x04), 23);
}
END_TEST

START_TEST(test_rtc_bus_ports)
{
	struct io_bus *bus;
	uint8_t v;
	uint16_t w;

	ck_assert_int_eq(io_bus_create(&bus), 0);
	ck_assert_int_eq(io_bus_register(bus, CMOS_RTC_PORT, 2,
					 cmos_rtc_bus_ops(), rtc),
			 0);
	v = 0x80 | 0x04;
	ck_assert_int_eq(io_bus_write(bus, 0x70, &v, 1), 0);
	ck_assert(cmos_rtc_nmi_disabled(rtc));
	ck_assert_int_eq(io_bus_read(bus, 0x71, &v, 1), 0);
	ck_assert_uint_eq(v, 0x13);
	ck_assert_int_eq(io_bus_read(bus, 0x70, &v, 1), 0);
	ck_assert_uint_eq(v, 0xff); /* index port is write-only */
	w = 0x5a20;		    /* outw: index 0x20, data 0x5a */
	ck_assert_int_eq(io_bus_write(bus, 0x70, &w, 2), 0);
	ck_assert_uint_eq(cmos_rtc_get_byte(rtc, 0x20), 0x5a);
	ck_assert(!cmos_rtc_nmi_disabled(rtc));
	io_bus_destroy(bus);
}
END_TEST

START_TEST(test_rtc_real_clock)
{
	struct cmos_rtc *r;
	time_t now = time(NULL);
	struct tm tm;
	unsigned yy, cc;

	ck_assert_int_eq(cmos_rtc_create(NULL, &r), 0);
	gmtime_r(&now, &tm);
	cmos_rtc_write_index(r, 0x09);
	yy = cmos_rtc_read_data(r);
	cmos_rtc_write_index(r, 0x32);
	cc = cmos_rtc_read_data(r);
	ck_assert_uint_eq((cc >> 4) * 1000 + (cc & 15) * 100 + (yy >> 4) * 10 +
				  (yy & 15),
			  (unsigned)tm.tm_year + 1900);
	cmos_rtc_destroy(r);
}
END_TEST

START_TEST(test_rtc_poll_nothing_enabled)
{
	ck_assert_int_eq(cmos_rtc_poll(rtc), -1);
	fake_ns += 5 * NS;
	ck_assert_int_eq(cmos_rtc_poll(rtc), -1);
	ck_assert(!rec.level);
	ck_assert(!cmos_rtc_irq_level(rtc));
	ck_assert_int_eq(cmos_rtc_poll(NULL), -EINVAL);
	/* flags are still recorded for a polling guest: PF (A's default rate
	 * 6 runs whether or not PIE is set) and UF */
	ck_assert_uint_eq(rd(0x0c), 0x50);
}
END_TEST

START_TEST(test_rtc_update_interrupt)
{
	wr(0x0b, 0x12); /* UIE, 24 h */
	ck_assert_int_eq(cmos_rtc_poll(rtc), NS / 2);
	ck_assert(!rec.level);
	fake_ns += NS / 2 + 1000;
	ck_assert_int_eq(cmos_rtc_poll(rtc), NS - 1000);
	ck_assert(rec.level);
	ck_assert(cmos_rtc_irq_level(rtc));
	ck_assert_uint_eq(rd(0x0c), 0xd0); /* IRQF | PF (not enabled) | UF */
	ck_assert(!rec.level);
	ck_assert_uint_eq(rd(0x0c), 0x00);
	ck_assert_uint_eq(rec.asserts, 1);
}
END_TEST

START_TEST(test_rtc_periodic_interrupt)
{
	int64_t next;

	wr(0x0a, 0x26); /* 1024 Hz */
	wr(0x0b, 0x42); /* PIE */
	next = cmos_rtc_poll(rtc);
	ck_assert_int_gt(next, 0);
	ck_assert_int_le(next, 976563);
	fake_ns += next;
	cmos_rtc_poll(rtc);
	ck_assert(rec.level);
	ck_assert_uint_eq(rd(0x0c) & 0xc0, 0xc0);
	ck_assert(!rec.level);
	wr(0x0a, 0x20); /* rate 0: no periodic interrupt */
	fake_ns += NS / 10;
	ck_assert_int_eq(cmos_rtc_poll(rtc), -1);
	ck_assert(!rec.level);
}
END_TEST

START_TEST(test_rtc_alarm_interrupt)
{
	wr(0x01, 0x58); /* alarm 13:45:58 */
	wr(0x03, 0x45);
	wr(0x05, 0x13);
	wr(0x0b, 0x22); /* AIE */
	ck_assert_int_eq(cmos_rtc_poll(rtc), NS / 2);
	fake_ns += NS; /* :57 */
	cmos_rtc_poll(rtc);
	ck_assert(!rec.level);
	ck_assert_uint_eq(rd(0x0c) & 0x20, 0);
	fake_ns += NS; /* :58 */
	cmos_rtc_poll(rtc);
	ck_assert(rec.level);
	ck_assert_uint_eq(rd(0x0c) & 0xa0, 0xa0);
	/* don't-care hours/minutes/seconds: every second */
	wr(0x01, 0xc0);
	wr(0x03, 0xff);
	wr(0x05, 0xc0);
	fake_ns += NS;
	cmos_rtc_poll(rtc);
	ck_assert_uint_eq(rd(0x0c) & 0xa0, 0xa0);
}
END_TEST

START_TEST(test_rtc_enable_with_pending_flag)
{
	fake_ns += NS;
	cmos_rtc_poll(rtc); /* UF set, UIE off */
	ck_assert(!rec.level);
	wr(0x0b, 0x12);
	ck_assert(rec.level);
	(void)rd(0x0c);
	ck_assert(!rec.level);
}
END_TEST

static uint8_t linux_cmos_read(struct io_bus *bus, uint8_t reg)
{
	uint8_t v = reg;

	ck_assert_int_eq(io_bus_write(bus, 0x70, &v, 1), 0);
	ck_assert_int_eq(io_bus_read(bus, 0x71, &v, 1), 0);
	return v;
}

static unsigned bcd(uint8_t v)
{
	return (v >> 4) * 10u + (v & 0x0f);
}

/*
 * Linux's mc146818_avoid_UIP() with mc146818_get_time_callback(): seconds,
 * UIP, seconds again, the time registers and B, UIP, seconds; udelay(100)
 * after a UIP hit; give up after 10 ms of rechecks (then x86 prints
 * "Unable to read current time from RTC").  Returns the time read, or -1.
 */
static int64_t linux_get_time(struct io_bus *bus, unsigned *loops)
{
	for (unsigned i = 0; i / 10 < 10; i++) {
		uint8_t sec = linux_cmos_read(bus, 0x00), min, hour, mday, mon,
			year, ctrl;
		struct tm tm;

		*loops = i + 1;
		if (linux_cmos_read(bus, 0x0a) & 0x80) {
			fake_ns += 100000;
			continue;
		}
		if (sec != linux_cmos_read(bus, 0x00))
			continue;
		min = linux_cmos_read(bus, 0x02);
		hour = linux_cmos_read(bus, 0x04);
		mday = linux_cmos_read(bus, 0x07);
		mon = linux_cmos_read(bus, 0x08);
		year = linux_cmos_read(bus, 0x09);
		ctrl = linux_cmos_read(bus, 0x0b);
		if (linux_cmos_read(bus, 0x0a) & 0x80) {
			fake_ns += 100000;
			continue;
		}
		if (sec != linux_cmos_read(bus, 0x00))
			continue;
		ck_assert_uint_eq(ctrl & 0x06, 0x02); /* BCD, 24 h */
		memset(&tm, 0, sizeof(tm));
		tm.tm_sec = (int)bcd(sec);
		tm.tm_min = (int)bcd(min);
		tm.tm_hour = (int)bcd(hour);
		tm.tm_mday = (int)bcd(mday);
		tm.tm_mon = (int)bcd(mon) - 1;
		tm.tm_year = (int)bcd(year) + 100; /* < 70: 20xx */
		return (int64_t)timegm(&tm);
	}
	return -1;
}

/* The driver's sequence at every phase of the second, on a fast and on a
 * very slow (emulated ring 0) guest: it always succeeds, within a few
 * loops, and reads a second the clock was in while it read. */
START_TEST(test_rtc_linux_get_time_uip_polling)
{
	static const int64_t steps[] = {0, 1000, 40000, 150000};
	struct io_bus *bus;

	ck_assert_int_eq(io_bus_create(&bus), 0);
	ck_assert_int_eq(io_bus_register(bus, 0x70, 2, cmos_rtc_bus_ops(), rtc),
			 0);
	for (unsigned k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
		for (int64_t ph = 990000000ll; ph < 1010000000ll; ph += 17000) {
			int64_t start, t;
			unsigned loops = 0;

			fake_step = steps[k];
			fake_ns = T0 * NS + ph;
			start = fake_ns / NS;
			t = linux_get_time(bus, &loops);
			ck_assert_int_ne(t, -1);
			ck_assert_uint_le(loops, 4);
			ck_assert_int_ge(t, start);
			ck_assert_int_le(t, fake_ns / NS);
		}
	}
	fake_step = 0;
	io_bus_destroy(bus);
}
END_TEST

static Suite *rtc_suite(void)
{
	Suite *s = suite_create("rtc");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_rtc_create_errors);
	tcase_add_test(tc, test_rtc_null_and_zero_config);
	tcase_add_test(tc, test_rtc_bcd_24h);
	tcase_add_test(tc, test_rtc_binary_mode);
	tcase_add_test(tc, test_rtc_12h_mode);
	tcase_add_test(tc, test_rtc_clock_advances);
	tcase_add_test(tc, test_rtc_uip_window);
	tcase_add_test(tc, test_rtc_reg_a_writable_uip_read_only);
	tcase_add_test(tc, test_rtc_reg_d_valid);
	tcase_add_test(tc, test_rtc_reg_c_update_flag);
	tcase_add_test(tc, test_rtc_set_time);
	tcase_add_test(tc, test_rtc_set_time_binary_12h);
	tcase_add_test(tc, test_rtc_write_field_running);
	tcase_add_test(tc, test_rtc_cmos_ram);
	tcase_add_test(tc, test_rtc_nmi_bit);
	tcase_add_test(tc, test_hostile_rtc_index_bounded);
	tcase_add_test(tc, test_hostile_rtc_garbage_time);
	tcase_add_test(tc, test_rtc_bus_ports);
	tcase_add_test(tc, test_rtc_real_clock);
	tcase_add_test(tc, test_rtc_linux_get_time_uip_polling);
	tcase_add_test(tc, test_rtc_poll_nothing_enabled);
	tcase_add_test(tc, test_rtc_update_interrupt);
	tcase_add_test(tc, test_rtc_periodic_interrupt);
	tcase_add_test(tc, test_rtc_alarm_interrupt);
	tcase_add_test(tc, test_rtc_enable_with_pending_flag);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cvmm_check_run(rtc_suite(), false);
}
