/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libdevices: MC146818 CMOS real-time clock and NVRAM (PC ports 0x70/0x71).
 *
 * Register it with io_bus_register(pio, 0x70, 2, cmos_rtc_bus_ops(), rtc):
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
 * cmos_rtc_poll() from its event loop; it sets C's PF (periodic, rate from A bits
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
 * Names: the device is struct cmos_rtc and every function is cmos_rtc_*
 * (the header keeps the short name rtc.h).
 *
 * Threads: every function may be called from any thread; the device has its
 * own mutex.  The clock callback and the irq line are called with that mutex
 * held: they must not call back into this device.  Nothing blocks.
 *
 * Lifetime: the device keeps only the callbacks' opaque pointers, which
 * must stay valid until cmos_rtc_destroy().
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

/** Base of the two-port window on the PC (index 0x70, data 0x71). */
#define CMOS_RTC_PORT 0x70u
/** CMOS bytes addressable through the index port (and by the VMM). */
#define CMOS_RTC_SIZE 128u

struct cmos_rtc;

/**
 * RTC configuration.  A zero-initialised struct (or a NULL pointer to
 * cmos_rtc_create()) gives the defaults: the host's CLOCK_REALTIME, no
 * interrupt line.
 */
struct cmos_rtc_config {
	/** Host clock: nanoseconds since the Unix epoch (UTC).  NULL:
	 *  clock_gettime(CLOCK_REALTIME).  Called with the device lock held:
	 *  it must not call back into the device. */
	int64_t (*now_ns)(void *opaque);
	void *clock_opaque;
	/** IRQ 8, level: asserted while C.IRQF is set.  Zeroed: none. */
	struct irq_line irq;
};

/**
 * cmos_rtc_create() - create an RTC: 24-hour BCD mode, register A 0x26,
 * D.VRT set, the time registers loaded from the host clock, CMOS RAM zero.
 * @cfg: configuration, copied; NULL means all defaults.
 * @out: receives the device; set to NULL on error.
 *
 * Errors: -EINVAL (@out NULL), -ENOMEM.  Threads: any thread.
 */
CVMM_EXPORT int cmos_rtc_create(const struct cmos_rtc_config *cfg,
				struct cmos_rtc **out);

/** cmos_rtc_destroy() - free the RTC.  Accepts NULL.  Unregister it from
 *  every bus first; no other thread may use it any more. */
CVMM_EXPORT void cmos_rtc_destroy(struct cmos_rtc *rtc);

/** cmos_rtc_bus_ops() - bus callbacks for the 2-port window; their opaque is
 *  the struct cmos_rtc *.  The returned table is static (never freed). */
CVMM_EXPORT const struct io_bus_ops *cmos_rtc_bus_ops(void);

/** cmos_rtc_write_index() - guest write of the index port: bits 0-6 select
 *  the CMOS byte, bit 7 is the NMI mask (see cmos_rtc_nmi_disabled()).
 *  NULL is ignored. */
CVMM_EXPORT void cmos_rtc_write_index(struct cmos_rtc *rtc, uint8_t val);

/** cmos_rtc_read_data() - guest read of the data port: the byte at the
 *  current index, time registers refreshed from the clock, register C
 *  cleared by the read (which may lower IRQ 8).  NULL reads 0xff. */
CVMM_EXPORT uint8_t cmos_rtc_read_data(struct cmos_rtc *rtc);

/** cmos_rtc_write_data() - guest write of the data port (C and D read-only,
 *  UIP read-only, time registers move the guest clock, see above).  NULL is
 *  ignored. */
CVMM_EXPORT void cmos_rtc_write_data(struct cmos_rtc *rtc, uint8_t val);

/** cmos_rtc_nmi_disabled() - true when the guest last wrote the index with
 *  bit 7 (NMI disabled); false for NULL.  The VMM decides what masking NMIs
 *  means for it. */
CVMM_EXPORT bool cmos_rtc_nmi_disabled(struct cmos_rtc *rtc);

/**
 * cmos_rtc_get_byte(), cmos_rtc_set_byte() - VMM access to raw CMOS bytes
 * (no side effects, no time conversion), e.g. to fill the BIOS memory-size
 * bytes before boot.  The index is reduced modulo CMOS_RTC_SIZE.  Get
 * returns 0xff for NULL; set ignores NULL.
 */
CVMM_EXPORT uint8_t cmos_rtc_get_byte(struct cmos_rtc *rtc, unsigned index);
CVMM_EXPORT void cmos_rtc_set_byte(struct cmos_rtc *rtc, unsigned index,
				   uint8_t val);

/**
 * cmos_rtc_poll() - evaluate the interrupt sources at the current host time
 * (see above); may raise IRQ 8.
 *
 * Returns the nanoseconds until the next poll is useful (the next periodic
 * tick or second boundary), or -1 when no interrupt is enabled; -EINVAL
 * for NULL.  Threads: any thread, normally the VMM's timer handler.
 */
CVMM_EXPORT int64_t cmos_rtc_poll(struct cmos_rtc *rtc);

/** cmos_rtc_irq_level() - current level of IRQ 8 as driven by the device
 *  (false for NULL). */
CVMM_EXPORT bool cmos_rtc_irq_level(struct cmos_rtc *rtc);

/** cmos_rtc_offset_seconds() - guest time minus host time, in seconds (0
 *  for NULL). */
CVMM_EXPORT int64_t cmos_rtc_offset_seconds(struct cmos_rtc *rtc);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_DEVICES_RTC_H */
