/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libdevices: i8042 keyboard controller (PC ports 0x60 data, 0x64
 * status/command), enough for Linux to probe it quietly and to reboot.
 *
 * Modelled: the status register (OBF, SYS, CMD/DATA, keyboard unlocked,
 * AUXDATA), the controller configuration byte and its 32-byte RAM
 * (commands 0x20-0x3f read, 0x60-0x7f write), self-test 0xaa -> 0x55,
 * keyboard interface test 0xab -> 0x00, keyboard disable/enable (0xad/0xae),
 * AUX disable/enable (0xa7/0xa8), input/output port (0xc0, 0xd0, 0xd1), A20
 * (0xdd/0xdf), writes to the keyboard output buffer (0xd2), and reset: command
 * 0xfe (or any 0xf0-0xfe pulse with bit 0 clear, or an output port write with
 * bit 0 clear) calls the reset callback.
 *
 * There is no AUX (mouse) port: the AUX interface test (0xa9) answers 0x01
 * and the AUX loopback (0xd3) echoes without the AUXDATA flag, so Linux
 * decides at once that there is no AUX port instead of waiting for timeouts;
 * bytes for the AUX device (0xd4) are dropped.  The controller's own answers
 * sit in a one-byte latch: a new controller command discards an unread
 * answer (Linux leaves the AUX loopback echo unread), so no stale byte
 * reaches the keyboard driver; keyboard bytes are never discarded.
 *
 * A minimal keyboard answers the commands Linux's atkbd sends: reset 0xff ->
 * 0xfa 0xaa, get-id 0xf2 -> 0xfa 0xab 0x83, echo 0xee -> 0xee, get/set scan
 * code set 0xf0, LEDs 0xed and typematic 0xf3 (with their parameter byte),
 * anything else -> 0xfa.  No key is ever pressed.  The output queue is
 * bounded (16 bytes; further bytes are dropped).
 *
 * IRQ 1: asserted while the output buffer holds a keyboard byte and the
 * configuration byte's keyboard interrupt bit is set.  Reading the data port
 * lowers the line before raising it again for the next byte, so an edge-
 * triggered IOAPIC/PIC input sees one edge per byte.
 *
 * Port 0x61 (PIT channel 2 gate, speaker, refresh toggle) is not modelled
 * here: KVM's in-kernel PIT (KVM_CREATE_PIT2) handles it, and Linux only
 * touches it for PIT calibration and the speaker.
 *
 * Threads: every function may be called from any thread; the device has its
 * own mutex.  The irq line is called with that mutex held (it must not call
 * back into this device); the reset callback without it, after the access
 * completed, on the thread that made the access (normally a vCPU).
 *
 * Lifetime: the device keeps only the reset callback's opaque pointer,
 * which must stay valid until i8042_destroy().
 */
#ifndef CVMM_DEVICES_I8042_H
#define CVMM_DEVICES_I8042_H

#include <stdbool.h>
#include <stdint.h>

#include <cvmm/devices/bus.h>
#include <cvmm/devices/irq.h>

#include <cvmm/devices/version.h> /* CVMM_EXPORT, version */

#ifdef __cplusplus
extern "C" {
#endif

/** The PC's ports: data 0x60, status/command 0x64. */
#define I8042_DATA_PORT 0x60u
#define I8042_CMD_PORT	0x64u

struct i8042;

/**
 * Controller configuration.  A zero-initialised struct (or a NULL pointer
 * to i8042_create()) gives the defaults: no interrupt line, no reset
 * callback (resets are only counted, see i8042_reset_count()).
 */
struct i8042_config {
	/** IRQ 1 (keyboard).  Zeroed: not connected. */
	struct irq_line kbd_irq;
	/** Called when the guest asks for a CPU reset (e.g. 0xfe).  NULL: none.
	 *  Called without the device lock, on the thread of the guest access;
	 *  it may call back into the device and must not block. */
	void (*reset)(void *opaque);
	void *reset_opaque;
};

/**
 * i8042_create() - create a controller in its power-on state (keyboard
 * interrupt, SYS and translation on in the configuration byte).
 * @cfg: configuration, copied; NULL means all defaults.
 * @out: receives the device; set to NULL on error.
 *
 * Errors: -EINVAL (@out NULL), -ENOMEM.  Threads: any thread.
 */
CVMM_EXPORT int i8042_create(const struct i8042_config *cfg,
			     struct i8042 **out);

/** i8042_destroy() - free the controller.  Accepts NULL.  Unregister it from
 *  every bus first; no other thread may use it any more. */
CVMM_EXPORT void i8042_destroy(struct i8042 *k);

/** i8042_data_bus_ops() - bus callbacks for the data port (length 1, offset
 *  0); their opaque is the struct i8042 *.  Static table (never freed). */
CVMM_EXPORT const struct io_bus_ops *i8042_data_bus_ops(void);
/** i8042_cmd_bus_ops() - bus callbacks for the status/command port (length
 *  1, offset 0); their opaque is the struct i8042 *.  Static table. */
CVMM_EXPORT const struct io_bus_ops *i8042_cmd_bus_ops(void);

/**
 * i8042_register() - register the data port at @data_port and the command
 * port at @cmd_port (normally I8042_DATA_PORT and I8042_CMD_PORT) on @bus,
 * opaque @k.
 *
 * On failure nothing stays registered (a taken command port is refused
 * before the data port is registered).  Called from inside a dispatch of
 * @bus, a data port undone after a racing conflict is removed without
 * waiting: io_bus_synchronize() before freeing @k then.  The bus does not
 * own @k: unregister both ports before i8042_destroy().  Errors: -EINVAL
 * (NULL @k or @bus), -EEXIST (a port taken, or both ports equal),
 * io_bus_register()'s.  Threads: any thread.
 */
CVMM_EXPORT int i8042_register(struct i8042 *k, struct io_bus *bus,
			       uint64_t data_port, uint64_t cmd_port);

/** i8042_read_data() - guest read of the data port: pops the output buffer
 *  (an empty buffer reads the last byte again).  NULL reads 0xff. */
CVMM_EXPORT uint8_t i8042_read_data(struct i8042 *k);
/** i8042_read_status() - guest read of the status register (no side
 *  effect).  NULL reads 0xff. */
CVMM_EXPORT uint8_t i8042_read_status(struct i8042 *k);
/** i8042_write_data() - guest write to the data port: a pending command's
 *  parameter, else a keyboard command.  May call the reset callback before
 *  returning.  NULL is ignored. */
CVMM_EXPORT void i8042_write_data(struct i8042 *k, uint8_t val);
/** i8042_write_cmd() - guest write to the command port.  May call the reset
 *  callback before returning.  NULL is ignored. */
CVMM_EXPORT void i8042_write_cmd(struct i8042 *k, uint8_t cmd);

/** i8042_reset_count() - number of reset requests seen so far (0 for
 *  NULL). */
CVMM_EXPORT unsigned i8042_reset_count(struct i8042 *k);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_DEVICES_I8042_H */
