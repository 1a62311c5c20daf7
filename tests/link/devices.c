/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Link test for libcvmm-devices: a bus with a UART, an i8042 and an RTC. */
#include <cvmm/devices/bus.h>
#include <cvmm/devices/i8042.h>
#include <cvmm/devices/irq.h>
#include <cvmm/devices/rtc.h>
#include <cvmm/devices/serial.h>

#include <stdint.h>

int main(void)
{
	struct io_bus *bus = NULL;
	struct serial *s = NULL;
	struct i8042 *k = NULL;
	struct cmos_rtc *rtc = NULL;
	struct serial_config scfg = {0};
	struct i8042_config kcfg = {0};
	struct event_notifier *n = NULL;
	uint8_t v = 0;
	int ok = 1;

	if (io_bus_create(&bus) || serial_create(&scfg, &s) ||
	    i8042_create(&kcfg, &k) || cmos_rtc_create(NULL, &rtc) ||
	    event_notifier_create(0, &n))
		return 1;
	ok &= io_bus_register(bus, 0x3f8, SERIAL_NR_REGS, serial_bus_ops(),
			      s) == 0;
	ok &= i8042_register(k, bus, I8042_DATA_PORT, I8042_CMD_PORT) == 0;
	ok &= io_bus_register(bus, CMOS_RTC_PORT, 2, cmos_rtc_bus_ops(), rtc) ==
	      0;
	ok &= io_bus_read(bus, 0x3fd, &v, 1) == 0 && v == 0x60;
	v = 0xaa;
	ok &= io_bus_write(bus, 0x64, &v, 1) == 0;
	ok &= io_bus_read(bus, 0x60, &v, 1) == 0 && v == 0x55;
	v = 0x0d;
	ok &= io_bus_write(bus, 0x70, &v, 1) == 0;
	ok &= io_bus_read(bus, 0x71, &v, 1) == 0 && v == 0x80;
	ok &= io_bus_read(bus, 0x1234, &v, 1) == IO_BUS_UNHANDLED;
	ok &= event_notifier_signal(n) == 0 && event_notifier_consume(n) == 1;
	ok &= io_bus_count(bus) == 4;
	io_bus_destroy(bus);
	cmos_rtc_destroy(rtc);
	i8042_destroy(k);
	serial_destroy(s);
	event_notifier_destroy(n);
	return ok ? 0 : 1;
}
