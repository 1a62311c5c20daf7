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
 * Transmit is instantaneous for the guest: a THR write hands the byte to
 * the output at once, so LSR.THRE and LSR.TEMT always read 1 and a THRE
 * interrupt is pending after every write.  The output never blocks the
 * vCPU (see "Output" below).  Receive uses a 16-byte FIFO (1 byte with FCR
 * FIFOs disabled) fed from a bounded host-side input buffer
 * (serial_config.input_capacity bytes): host input beyond the buffer's free
 * space is refused, never queued without bound (CVE-2020-27173/27174 class).
 *
 * Output: transmitted bytes go to one of
 *  - a callback (serial_config.out): called with every byte, in order.  It
 *    runs on the vCPU thread that wrote THR and MUST NOT block (no write()
 *    to a blocking fd, no waiting for a reader); the device drops nothing
 *    on this path, so bounding and counting is the callback's business;
 *  - a file descriptor (serial_config.use_out_fd/out_fd): bytes go into a
 *    bounded host-side output buffer (serial_config.output_capacity,
 *    SERIAL_OUTPUT_DEFAULT = 64 KiB unless set, at most SERIAL_OUTPUT_MAX)
 *    and are written from it with non-blocking writes.  When the fd is full
 *    (EAGAIN) the device stops writing and keeps buffering; once the buffer
 *    is full, further bytes are dropped and counted
 *    (serial_output_dropped()).  The VMM polls serial_output_fd() for
 *    writability (POLLOUT) and calls serial_output_flush() when it is
 *    writable, which writes the buffered bytes in order: the output_poll
 *    callback tells it to start polling (level-triggered), and it stops
 *    when serial_output_flush() returns 0.  A VMM that never flushes gets
 *    its output up to the first time the fd is full, then only drops.
 *    A write error other than EAGAIN (a closed pipe, EIO) drops and counts
 *    everything buffered; the next THR write tries the fd again;
 *  - nowhere (neither set): bytes are discarded (not counted).
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
 * back into this device.  The output callback, output_poll and input_space
 * run after the mutex is released, on the thread whose call caused them
 * (a vCPU's register access, or the VMM's serial_output_flush()): they may
 * call back into the device (echo with serial_input(), read a register,
 * even write THR, which is delivered nested on the same thread).  Output
 * callback deliveries happen one at a time, in the order of the THR writes
 * for writes the guest serialises (a port write completes only after its
 * bytes were handed to the callback or the buffer).  On the fd path one
 * thread at a time writes to the fd; a vCPU whose THR write finds another
 * thread writing leaves its bytes to that thread and returns.
 *
 * Lifetime: the device keeps pointers to nothing the caller owns except
 * the callbacks' opaque pointers and out_fd, which must stay valid until
 * serial_destroy().  The device never closes out_fd.
 */
#ifndef CVMM_DEVICES_SERIAL_H
#define CVMM_DEVICES_SERIAL_H

#include <stdbool.h>
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
#define SERIAL_NR_REGS	      8u
/** Default and maximum host-side input buffer sizes. */
#define SERIAL_INPUT_DEFAULT  4096u
#define SERIAL_INPUT_MAX      (1u << 20)
/** Default and maximum host-side output buffer sizes (fd output only). */
#define SERIAL_OUTPUT_DEFAULT (64u * 1024)
#define SERIAL_OUTPUT_MAX     (16u << 20)

struct serial;

/**
 * UART configuration.  A zero-initialised struct (or a NULL pointer to
 * serial_create()) gives the defaults: no interrupt line, output
 * discarded, default buffer sizes, no callbacks.
 */
struct serial_config {
	/** Interrupt line (level; IRQ 4 for COM1).  Zeroed: not connected. */
	struct irq_line irq;
	/** Output callback, called for each transmitted byte run (up to 8
	 *  bytes, those of one guest access), without the device lock.  It
	 *  must not block (see "Output" above).  @buf is valid during the
	 *  call only.  NULL: no callback.  Not together with use_out_fd. */
	void (*out)(void *opaque, const uint8_t *buf, size_t len);
	void *out_opaque;
	/** True: transmitted bytes go to @out_fd through the output buffer
	 *  (see "Output" above).  False (default): @out_fd is ignored. */
	bool use_out_fd;
	/** Output file descriptor, not taken over (never closed).  It must be
	 *  non-blocking (O_NONBLOCK) unless it is a regular file or a socket
	 *  (sockets are written with MSG_DONTWAIT | MSG_NOSIGNAL); it must stay
	 *  open, and non-blocking, until serial_destroy().  A pipe whose reader
	 *  is gone raises SIGPIPE on write() as for any writer: a VMM that
	 *  writes to pipes ignores SIGPIPE. */
	int out_fd;
	/** Output buffer size in bytes (fd output only); 0 means
	 *  SERIAL_OUTPUT_DEFAULT; more than SERIAL_OUTPUT_MAX is refused. */
	size_t output_capacity;
	/** Optional (fd output only): called when bytes are left in the output
	 *  buffer for serial_output_flush(): the fd was full, or the writing
	 *  thread reached its per-call budget.  The VMM then polls
	 *  serial_output_fd() for POLLOUT and calls serial_output_flush() when
	 *  it is writable, until that returns 0.  Called without the device
	 *  lock, on the vCPU thread that wrote THR or inside
	 *  serial_output_flush(); it must not block, must not call
	 *  serial_output_flush() itself (that could recurse while the fd stays
	 *  full), and may be called again while the VMM is already polling
	 *  (make it idempotent). */
	void (*output_poll)(void *opaque);
	void *output_poll_opaque;
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

/**
 * serial_create() - create a UART in its reset state.
 * @cfg: configuration, copied; NULL means all defaults (see struct
 *       serial_config).  The device does not take over out_fd.
 * @out: receives the device; set to NULL on error.
 *
 * Errors: -EINVAL (@out NULL; both out and use_out_fd; a capacity above its
 * maximum; out_fd blocking and neither a regular file nor a socket),
 * -EBADF (use_out_fd with out_fd not an open descriptor), -ENOMEM.
 * Threads: any thread.
 */
CVMM_EXPORT int serial_create(const struct serial_config *cfg,
			      struct serial **out);

/**
 * serial_destroy() - free the UART.  Accepts NULL.
 *
 * Output still buffered for the fd is discarded (call serial_output_flush()
 * first to keep it); out_fd is not closed.  The device must be unregistered
 * from every bus first (io_bus_unregister()) and no other thread may use it
 * any more.
 */
CVMM_EXPORT void serial_destroy(struct serial *s);

/**
 * serial_reset() - reset registers and the receive FIFO to power-on state.
 *
 * Host-side input and output buffers are kept; lowers the line if it was
 * raised.  NULL is ignored.  Threads: any thread.
 */
CVMM_EXPORT void serial_reset(struct serial *s);

/** serial_bus_ops() - bus callbacks for the 8-port window; their opaque is
 *  the struct serial *.  The returned table is static (never freed). */
CVMM_EXPORT const struct io_bus_ops *serial_bus_ops(void);

/**
 * serial_reg_read() - guest read of register @reg (0..7, DLAB-aware), with
 * its side effects.  Out-of-range registers read 0xff; NULL reads 0xff.
 * Threads: any thread (normally a vCPU's); may run the input_space
 * callback before returning.
 */
CVMM_EXPORT uint8_t serial_reg_read(struct serial *s, unsigned reg);

/**
 * serial_reg_write() - guest write of register @reg (0..7, DLAB-aware).
 * Out-of-range registers and NULL are ignored.  A THR write hands the byte
 * to the output before returning and never blocks (see "Output").
 * Threads: any thread (normally a vCPU's); may run the output callback,
 * output_poll or input_space before returning.
 */
CVMM_EXPORT void serial_reg_write(struct serial *s, unsigned reg, uint8_t val);

/**
 * serial_input() - host input: queue up to @len bytes for the guest.
 *
 * Returns the number of bytes accepted (0 when the buffer is full: the
 * caller may retry after the guest reads, see input_space); -EINVAL for
 * NULL @s or (@buf NULL and @len > 0).  Threads: any thread.
 */
CVMM_EXPORT ssize_t serial_input(struct serial *s, const void *buf, size_t len);

/**
 * serial_input_from_fd() - host input read from @fd (not taken over).
 *
 * One read() of at most the free buffer space (and at most 512 bytes).
 * Returns the bytes queued; 0 when the buffer is full (nothing read);
 * -EAGAIN when a non-blocking @fd has nothing now; -EPIPE at end of file;
 * -EINVAL (NULL @s, negative @fd); or read()'s negative errno.  A blocking
 * @fd with nothing to read blocks the caller: call it when @fd polls
 * readable, and give it a non-blocking @fd when it may run on a vCPU
 * thread (from input_space, for example).  Threads: any thread.
 */
CVMM_EXPORT ssize_t serial_input_from_fd(struct serial *s, int fd);

/** serial_input_space() - free space of the host-side input buffer, in
 *  bytes (0 for NULL).  Threads: any thread. */
CVMM_EXPORT size_t serial_input_space(struct serial *s);

/**
 * serial_output_fd() - the descriptor the VMM polls for POLLOUT while
 * output waits in the buffer (see output_poll and serial_output_flush()).
 *
 * Returns out_fd (still owned by the caller); -ENOENT when the device
 * writes to no fd; -EINVAL for NULL.  Threads: any thread.
 */
CVMM_EXPORT int serial_output_fd(struct serial *s);

/**
 * serial_output_flush() - write buffered output to the fd, in order, with
 * non-blocking writes; call it when serial_output_fd() polls writable.
 *
 * Returns the bytes still buffered: 0 when everything was written (the VMM
 * may stop polling until output_poll is called again), more when the fd
 * filled up again or another thread is writing (keep polling).  On a write
 * error other than EAGAIN everything buffered is dropped and counted and
 * the negative errno is returned.  0 when the device writes to no fd;
 * -EINVAL for NULL.  Threads: any thread; never blocks on the fd (at most
 * a few write() calls); may call output_poll before returning.
 */
CVMM_EXPORT ssize_t serial_output_flush(struct serial *s);

/** serial_output_pending() - bytes waiting in the output buffer (0 for NULL
 *  or without fd output).  Threads: any thread. */
CVMM_EXPORT size_t serial_output_pending(struct serial *s);

/**
 * serial_output_dropped() - output bytes lost so far: transmitted while the
 * output buffer was full, or buffered when a write to the fd failed.
 * Bytes discarded because no output is configured are not counted.  0 for
 * NULL.  Threads: any thread.
 */
CVMM_EXPORT uint64_t serial_output_dropped(struct serial *s);

/** serial_irq_level() - current level of the interrupt line as driven by the
 *  device (false for NULL).  Threads: any thread. */
CVMM_EXPORT bool serial_irq_level(struct serial *s);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_DEVICES_SERIAL_H */
