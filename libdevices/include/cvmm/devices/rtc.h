/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libdevices: MC146818 CMOS real-time clock and NVRAM (PC ports 0x70/0x71).
 *
 * Register it with io_bus_register(pio, 0x70, 2, rtc_bus_ops(), rtc):
 * offset 0 is the index port (write-only; bit 7 = NMI disable, bits 0-6 the
 * register index, so the index is always < 128), offset 1 the data port.
 *
 * Time: read from the host clock (CLOCK_REALTIME, or the config's clock
 * callback) plus an offset the guest sets by writing the time registers,
 * in UTC.  Register B selects BCD or binary (DM, bit 2) and 12/24-hour
 * (bit 1; in 12-hour mode bit 7 of the hours is PM).  Register 0x32 holds
 * the century.  While B.SET (bit 7) is 1 the time registers are plain
 * storage (reads return what was last written, or the time when SET was
 * set); clearing SET loads them as the new time.  Writes with SET clear
 * change that one field of the current time at once.
 *
 * Status: A bit 7 (UIP) reads 1 during the last 244 us of each second,
 * as on the real chip, so a guest that waits for UIP to clear reads a
 * stable time; the rest of A is storage.  C reports UF (update ended)
 * when a second boundary passed since C was last checked, and is cleared by
 * reading (which also lowers IRQ 8); D reads 0x80 (valid RAM and time).
 *
 * Interrupts (IRQ 8): the device has no timer of its own.  The VMM calls
 * rtc_poll() from its event loop; it sets C's PF (periodic, rate from A bits
 * 0-3), AF (alarm: registers 1, 3, 5, 0xc0-0xff meaning "any") and UF flags
 * for what happened since the last poll, sets IRQF and raises the line when
 * an enabled (B: PIE, AIE, UIE) flag is set, and returns how long to wait
 * before the next poll (arm a timerfd with it).  The alarm is compared at
 * each poll, so poll at least once per second while AIE is set (the return
 * value asks for that).
 *
 * The other bytes (0x0e-0x7f, and the alarm registers 1, 3, 5) are CMOS
 * RAM, readable and writable by the guest and preloadable by the VMM.
 *
 * Threads: own mutex.
 */
#ifndef CVMM_DEVICES_RTC_H
#define CVMM_DEVICES_RTC_H

#include <stdbool.h>
#include <stdint.h>

#include <cvmm/devices/bus.h>
#include <cvmm/devices/irq.h>

#include <cvmm/devices/version.h> /* CVMM_EXPORT, version */

#ifdef __cplusplus
extern "C" {
#endif

#define RTC_CMOS_PORT 0x70u
#define RTC_CMOS_SIZE 128u

struct cmos_rtc;

struct cmos_rtc_config {
	/** Host clock: nanoseconds since the Unix epoch (UTC).  NULL:
	 *  clock_gettime(CLOCK_REALTIME). */
	int64_t (*now_ns)(void *opaque);
	void *clock_opaque;
	/** IRQ 8, level: asserted while C.IRQF is set.  Zeroed: none. */
	struct irq_line irq;
};

/** Create an RTC (24-hour BCD mode, register A 0x26).  cfg may be NULL for
 *  the defaults.  Errors: -EINVAL (out NULL), -ENOMEM. */
CVMM_EXPORT int rtc_create(const struct cmos_rtc_config *cfg,
			   struct cmos_rtc **out);

/** Free it (unregister it from the bus first).  Accepts NULL. */
CVMM_EXPORT void rtc_destroy(struct cmos_rtc *rtc);

/** Bus callbacks for the 2-port window; opaque is the struct cmos_rtc *. */
CVMM_EXPORT const struct io_bus_ops *rtc_bus_ops(void);

/** Guest write of the index port: bits 0-6 select the CMOS byte, bit 7 is
 *  the NMI mask (see rtc_nmi_disabled()).  NULL is ignored. */
CVMM_EXPORT void rtc_write_index(struct cmos_rtc *rtc, uint8_t val);
/** Guest read of the data port: the byte at the current index, time
 *  registers refreshed from the clock, register C cleared by the read.
 *  NULL reads 0xff. */
CVMM_EXPORT uint8_t rtc_read_data(struct cmos_rtc *rtc);
/** Guest write of the data port (C and D read-only, UIP read-only, time
 *  registers move the guest clock, see above).  NULL is ignored. */
CVMM_EXPORT void rtc_write_data(struct cmos_rtc *rtc, uint8_t val);

/** True when the guest last wrote the index with bit 7 (NMI disabled);
 *  false for NULL.  The VMM decides what masking NMIs means for it. */
CVMM_EXPORT bool rtc_nmi_disabled(struct cmos_rtc *rtc);

/** VMM access to raw CMOS bytes (no side effects, no time conversion), e.g.
 *  to fill the BIOS memory-size bytes before boot.  The index is reduced
 *  modulo RTC_CMOS_SIZE.  Get returns 0xff for NULL; set ignores NULL. */
CVMM_EXPORT uint8_t rtc_cmos_get(struct cmos_rtc *rtc, unsigned index);
CVMM_EXPORT void rtc_cmos_set(struct cmos_rtc *rtc, unsigned index,
			      uint8_t val);

/**
 * Evaluate the interrupt sources at the current host time (see above).
 * Returns the nanoseconds until the next poll is useful (the next periodic
 * tick or second boundary), or -1 when no interrupt is enabled; -EINVAL
 * for NULL.
 */
CVMM_EXPORT int64_t rtc_poll(struct cmos_rtc *rtc);

/** Current level of IRQ 8 as driven by the device (false for NULL). */
CVMM_EXPORT bool rtc_irq_level(struct cmos_rtc *rtc);

/** Guest time minus host time, in seconds (0 for NULL). */
CVMM_EXPORT int64_t rtc_offset_seconds(struct cmos_rtc *rtc);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_DEVICES_RTC_H */
