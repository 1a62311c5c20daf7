/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Fuzzer for the CMOS RTC: index/data port writes and reads through the bus
 * callbacks, and host clock jumps (including near the ends of the 64-bit
 * range).  Invariants: register D reads 0x80; in BCD 24-hour mode with SET
 * clear, the time registers are valid BCD in range.
 */
#include <cvmm/devices/rtc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                         \
	do {                                                             \
		if (!(c)) {                                              \
			fprintf(stderr, "invariant: %s (line %d)\n", #c, \
				__LINE__);                               \
			abort();                                         \
		}                                                        \
	} while (0)

static int64_t clk;

static int64_t fake_clock(void *opaque)
{
	(void)opaque;
	return clk;
}

static uint8_t rd(const struct io_bus_ops *ops, struct cmos_rtc *r, uint8_t idx)
{
	uint8_t v;

	ops->write(r, 0, &idx, 1);
	ops->read(r, 1, &v, 1);
	return v;
}

static int valid_bcd(uint8_t v, unsigned max)
{
	return (v & 0x0f) <= 9 && (v >> 4) <= 9 &&
	       (unsigned)((v >> 4) * 10 + (v & 0x0f)) <= max;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cmos_rtc_config cfg = {fake_clock, NULL};
	const struct io_bus_ops *ops = cmos_rtc_bus_ops();
	struct cmos_rtc *r;
	size_t i = 0;

	clk = 1700000000ll * 1000000000ll;
	if (cmos_rtc_create(&cfg, &r))
		return 0;
	while (i + 2 <= size) {
		uint8_t op = data[i], v = data[i + 1];
		uint8_t buf[2] = {v, (uint8_t)(op ^ v)};

		i += 2;
		switch (op & 3) {
		case 0:
			ops->write(r, op >> 7, buf, (op & 4) ? 2 : 1);
			break;
		case 1:
			ops->read(r, (op >> 7), buf, 1);
			break;
		case 2:
			if (__builtin_add_overflow(
				    clk, (int64_t)(int8_t)v * 250000000ll,
				    &clk))
				clk = 0;
			CHECK(cmos_rtc_poll(r) >= -1);
			break;
		default:
			if (v == 0xff)
				clk = INT64_MAX - 1;
			else if (v == 0xfe)
				clk = INT64_MIN + 1;
			else if (__builtin_add_overflow(clk,
							(int64_t)v * 86400ll *
								1000000000ll,
							&clk))
				clk = 0;
			break;
		}
		CHECK(rd(ops, r, 0x0d) == 0x80);
		if ((rd(ops, r, 0x0b) & 0x86) == 0x02) {
			CHECK(valid_bcd(rd(ops, r, 0x00), 59));
			CHECK(valid_bcd(rd(ops, r, 0x02), 59));
			CHECK(valid_bcd(rd(ops, r, 0x04), 23));
			CHECK(valid_bcd(rd(ops, r, 0x08), 12));
		}
	}
	cmos_rtc_destroy(r);
	return 0;
}
