/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libdevices: 16550A UART (PC COM port).
 *
 * Eight byte-wide registers at offsets 0..7 of the port's range (0x3f8 for
 * COM1, IRQ 4): RBR/THR, IER, IIR/FCR, LCR, MCR, LSR, MSR, SCR, with DLL/DLM
 * at offsets 0/1 while LCR.DLAB is set.  Register it on a port I/O bus with
 *   io_bus_register(pio, 0x3f8, SERIAL_NR_REGS, serial_bus_ops(), s);
 * An access wider than one byte touches consecutive registers in order.
 *
 * Transmit is instantaneous: a THR write goes to the output (callback or fd)
 * at once, so LSR.THRE and LSR.TEMT always read 1 and a THRE interrupt is
 * pending after every write.  Receive uses a 16-byte FIFO (1 byte with FCR
 * FIFOs disabled) fed from a bounded host-side input buffer
 * (serial_config.input_capacity bytes): host input beyond the buffer's free
 * space is refused, never queued without bound (CVE-2020-27173/27174 class).
 *
 * Interrupts: the usual 16550 priority (line status > received data /
 * character timeout > THR empty > modem status) reported in IIR.  The line is
 * level-style: asserted while an enabled interrupt is pending and MCR.OUT2 is
 * set (the PC gates IRQ with OUT2), deasserted otherwise; irq_line_set() is
 * called only when that changes.  Re-enabling IER re-asserts whatever is
 * still pending; setting IER.ETBEI with THR empty raises THRE.  The received
 * data interrupt is reported as "character timeout" (IIR 0xc) while the FIFO
 * holds fewer bytes than its trigger level, as "data available" (0x4) from
 * the trigger level on; both are handled alike by drivers.
 *
 * Loopback (MCR bit 4): THR writes land in the receive FIFO (overrun sets
 * LSR.OE when it is full), MSR reflects MCR (DTR->DSR, RTS->CTS, OUT1->RI,
 * OUT2->DCD) with delta bits, host input waits in its buffer.
 *
 * Threads: every function may be called from any thread; the device has its
 * own mutex.  The irq line is called with that mutex held: it must not call
 * back into this device.  The output callback (or fd write) and input_space
 * run after the mutex is released, one delivery at a time: they may call
 * back into the device (echo with serial_input(), read a register, even
 * write THR, which is delivered nested on the same thread).  Output keeps
 * the guest's order for THR writes the guest serialises (the port write
 * completes only after its bytes were delivered).
 */
#ifndef CVMM_DEVICES_SERIAL_H
#define CVMM_DEVICES_SERIAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <cvmm/devices/bus.h>
#include <cvmm/devices/irq.h>

#include <cvmm/devices/version.h> /* CVMM_EXPORT, version */

#ifdef __cplusplus
extern "C" {
#endif

/** Size of the UART's register window. */
#define SERIAL_NR_REGS	     8u
/** Default and maximum host-side input buffer sizes. */
#define SERIAL_INPUT_DEFAULT 4096u
#define SERIAL_INPUT_MAX     (1u << 20)

struct serial;

struct serial_config {
	/** Interrupt line (level; IRQ 4 for COM1).  Zeroed: not connected. */
	struct irq_line irq;
	/** Output callback, called for each transmitted byte run (up to 8
	 *  bytes, those of one guest access), without the device lock; when
	 *  NULL, bytes go to out_fd; when that is negative too, they are
	 *  dropped.  @buf is valid during the call only. */
	void (*out)(void *opaque, const uint8_t *buf, size_t len);
	void *out_opaque;
	/** Output fd (not owned; default -1).  A failed or short write drops
	 *  the byte (counted, see serial_output_dropped()). */
	int out_fd;
	/** Host-side input buffer size in bytes; 0 means SERIAL_INPUT_DEFAULT;
	 *  more than SERIAL_INPUT_MAX is refused. */
	size_t input_capacity;
	/** Optional: called when guest reads free space in a host-side input
	 *  buffer that was full (so a VMM that stopped polling its input fd
	 *  after serial_input() returned 0 can resume).  Called on the vCPU
	 *  thread after the device lock is released: it may call
	 *  serial_input() or serial_input_from_fd() directly. */
	void (*input_space)(void *opaque);
	void *input_space_opaque;
};

/** Fill @cfg with defaults: no irq, no output callback, out_fd -1, default
 *  input capacity.  NULL is ignored. */
CVMM_EXPORT void serial_config_init(struct serial_config *cfg);

/**
 * Create a UART in its reset state.  @cfg is copied.
 * Errors: -EINVAL (cfg or out NULL, input_capacity > SERIAL_INPUT_MAX),
 * -ENOMEM.
 */
CVMM_EXPORT int serial_create(const struct serial_config *cfg,
			      struct serial **out);

/** Free the UART (the output fd is not closed).  Accepts NULL.  It must be
 *  unregistered from any bus first (io_bus_unregister()). */
CVMM_EXPORT void serial_destroy(struct serial *s);

/** Reset registers and the receive FIFO to power-on state (host-side input
 *  is kept); lowers the line if it was raised. */
CVMM_EXPORT void serial_reset(struct serial *s);

/** Bus callbacks; their opaque is the struct serial *. */
CVMM_EXPORT const struct io_bus_ops *serial_bus_ops(void);

/** Guest read of register @reg (0..7, DLAB-aware) with its side effects.
 *  Out-of-range registers read 0xff.  NULL reads 0xff. */
CVMM_EXPORT uint8_t serial_reg_read(struct serial *s, unsigned reg);

/** Guest write of register @reg (0..7, DLAB-aware); out of range ignored. */
CVMM_EXPORT void serial_reg_write(struct serial *s, unsigned reg, uint8_t val);

/**
 * Host input: queue up to @len bytes for the guest.  Returns the number of
 * bytes accepted (0 when the buffer is full: the caller may retry after the
 * guest reads); -EINVAL for NULL s or (buf NULL and len > 0).
 */
CVMM_EXPORT ssize_t serial_input(struct serial *s, const void *buf, size_t len);

/**
 * Host input read from @fd (one read() of at most the free buffer space).
 * Returns the bytes queued; 0 when the buffer is full (nothing read);
 * -EAGAIN when fd has nothing now; -EPIPE at end of file; -EINVAL; or the
 * read() errno.
 */
CVMM_EXPORT ssize_t serial_input_from_fd(struct serial *s, int fd);

/** Free space of the host-side input buffer, in bytes (0 for NULL). */
CVMM_EXPORT size_t serial_input_space(struct serial *s);

/** Output bytes dropped because the output fd failed (0 for NULL). */
CVMM_EXPORT uint64_t serial_output_dropped(struct serial *s);

/** Current level of the interrupt line as driven by the device. */
CVMM_EXPORT bool serial_irq_level(struct serial *s);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_DEVICES_SERIAL_H */
