/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libdevices: interrupt and notification interfaces.
 *
 * libdevices never calls KVM.  A device raises interrupts through one of two
 * small interfaces, filled in by the VMM:
 *
 *  - struct irq_line: a wired interrupt line (ISA IRQ, PCI INTx, IOAPIC pin).
 *    A level-triggered device calls irq_line_set(line, true/false) (or
 *    irq_line_assert / irq_line_deassert) whenever the level changes; an
 *    edge-triggered device calls irq_line_pulse().  The VMM maps these to
 *    KVM_IRQ_LINE (level 1 then 0 for a pulse), to an irqfd (a pulse, or an
 *    assert, signals it; resamplefd for level), or to its own interrupt
 *    controller model.
 *
 *  - struct msi_sink: message-signalled interrupts (MSI / MSI-X).  The VMM
 *    maps it to KVM_SIGNAL_MSI or to a GSI route + irqfd.
 *
 * Both are plain structs of function pointers plus an opaque pointer, passed
 * and stored by value.  A zeroed struct is "not connected": every operation on
 * it succeeds and does nothing, so devices need no NULL checks.
 *
 * struct event_notifier wraps an eventfd for "guest kicked" (the VMM
 * registers its fd as an ioeventfd) and "inject interrupt" (the VMM
 * registers it as an irqfd).  irq_line_from_notifier() and
 * msi_sink_from_notifier() adapt a notifier to the two interfaces above
 * (edge semantics); struct irq_level_notifier carries a level-triggered
 * line through an irqfd with a resample fd.  Per-vector MSI-X irqfds are
 * set on the PCI function (pci_device_msix_set_notifier()).
 *
 * Callbacks may be called from any thread (vCPU or I/O thread), often with
 * the device's lock held: they must not call back into the device.
 */
#ifndef CVMM_DEVICES_IRQ_H
#define CVMM_DEVICES_IRQ_H

#include <stdbool.h>
#include <stdint.h>

#include <cvmm/devices/version.h> /* CVMM_EXPORT, version */

#ifdef __cplusplus
extern "C" {
#endif

/** How a device signals a wired line; informational for the VMM. */
enum irq_trigger {
	IRQ_TRIGGER_EDGE = 0,
	IRQ_TRIGGER_LEVEL = 1,
};

/**
 * A wired interrupt line.
 *
 * @set:   drive the line to @level (true = asserted).  Required for the line
 *         to be connected.  Return 0 or a negative errno.
 * @pulse: optional; signal one edge (assert then deassert).  When NULL,
 *         irq_line_pulse() calls set(true) then set(false).
 * @opaque: passed to the callbacks.
 */
struct irq_line {
	int (*set)(void *opaque, bool level);
	int (*pulse)(void *opaque);
	void *opaque;
};

/** Drive @line to @level.  Returns the callback's result; 0 when the line is
 *  NULL or not connected (set == NULL). */
CVMM_EXPORT int irq_line_set(const struct irq_line *line, bool level);
/** irq_line_set(line, true). */
CVMM_EXPORT int irq_line_assert(const struct irq_line *line);
/** irq_line_set(line, false). */
CVMM_EXPORT int irq_line_deassert(const struct irq_line *line);
/** One edge: pulse() if provided, else set(true) then set(false).  0 when not
 *  connected; the first error otherwise. */
CVMM_EXPORT int irq_line_pulse(const struct irq_line *line);
/** True when @line is non-NULL and has a set callback. */
CVMM_EXPORT bool irq_line_connected(const struct irq_line *line);

/**
 * A message-signalled-interrupt sink.
 *
 * @send: deliver the message (address, data) as programmed by the guest in
 *        an MSI capability or MSI-X table entry.  Return 0 or a negative
 *        errno.  Required for the sink to be connected.
 * @opaque: passed to send.
 */
struct msi_sink {
	int (*send)(void *opaque, uint64_t address, uint32_t data);
	void *opaque;
};

/** Deliver one message.  0 when the sink is NULL or not connected. */
CVMM_EXPORT int msi_sink_send(const struct msi_sink *sink, uint64_t address,
			      uint32_t data);
/** True when @sink is non-NULL and has a send callback. */
CVMM_EXPORT bool msi_sink_connected(const struct msi_sink *sink);

/* ------------------------------------------------------------ notifiers */

struct event_notifier;

/** event_notifier_create() flags. */
enum {
	/** Semaphore semantics: each consume takes one signal (EFD_SEMAPHORE). */
	EVENT_NOTIFIER_SEMAPHORE = 1u << 0,
};

/**
 * Create a notifier backed by a new non-blocking, close-on-exec eventfd.
 * Errors: -EINVAL (out NULL or unknown flags), -ENOMEM, or the eventfd()
 * errno (-EMFILE ...).
 */
CVMM_EXPORT int event_notifier_create(unsigned flags,
				      struct event_notifier **out);

/** Close the eventfd and free the notifier.  Accepts NULL. */
CVMM_EXPORT void event_notifier_destroy(struct event_notifier *n);

/** The eventfd, for KVM_IOEVENTFD / KVM_IRQFD / poll.  Still owned by the
 *  notifier.  -EINVAL for NULL. */
CVMM_EXPORT int event_notifier_fd(const struct event_notifier *n);

/** Signal once (add 1 to the counter).  Never blocks: if the counter is
 *  saturated the signal is already pending and 0 is returned.
 *  Errors: -EINVAL, or the write() errno. */
CVMM_EXPORT int event_notifier_signal(struct event_notifier *n);

/**
 * Consume pending signals without blocking.  Returns the number consumed
 * (1 in semaphore mode), 0 when none was pending (clamped to INT_MAX).
 * Errors: -EINVAL, or the read() errno.
 */
CVMM_EXPORT int event_notifier_consume(struct event_notifier *n);

/**
 * Wait up to @timeout_ms (-1 = forever, 0 = poll) for a signal, then consume
 * as event_notifier_consume().  Returns the count consumed, 0 on timeout.
 * Errors: -EINVAL, or the poll()/read() errno (-EINTR ...).
 */
CVMM_EXPORT int event_notifier_wait(struct event_notifier *n, int timeout_ms);

/**
 * Fill @line so that asserting or pulsing it signals @n (deasserting does
 * nothing): an edge-triggered irqfd.  @n must outlive the line.
 * Errors: -EINVAL (NULL argument).
 */
CVMM_EXPORT int irq_line_from_notifier(struct irq_line *line,
				       struct event_notifier *n);

/**
 * Fill @sink so that every message signals @n (the address and data are
 * ignored: the VMM programmed them into the irqfd's GSI route).  @n must
 * outlive the sink.  Errors: -EINVAL.
 */
CVMM_EXPORT int msi_sink_from_notifier(struct msi_sink *sink,
				       struct event_notifier *n);

/* ------------------------------------------- level lines through irqfd */

/**
 * struct irq_level_notifier - a level-triggered wired line carried by two
 * eventfds: an irqfd (signalled to assert) and a resample fd (signalled by
 * the interrupt controller when the guest ends the interrupt: KVM's
 * KVM_IRQFD_FLAG_RESAMPLE, which also lowers the line then).
 *
 * The line it fills (irq_level_notifier_line()) records the device's level
 * and signals the irqfd on assert and on pulse; deassert only records the
 * level (the controller lowers the line at the end of the interrupt).
 * When the resample fd becomes readable, the VMM calls
 * irq_level_notifier_resample(), which signals the irqfd again if the
 * device still holds the line high: the guest sees the interrupt again,
 * as with a real level-triggered line.  Several notifiers may share one
 * GSI.
 *
 * Threads: the line may be driven from any thread while another calls
 * irq_level_notifier_resample(); a signal is never lost (the resample fd
 * is consumed before the level is read).
 */
struct irq_level_notifier;

/**
 * Create a level notifier: two new non-blocking close-on-exec eventfds,
 * level low.  Errors: -EINVAL (@out NULL), -ENOMEM, the eventfd() errno.
 */
CVMM_EXPORT int irq_level_notifier_create(struct irq_level_notifier **out);

/** Close both eventfds and free @n.  Accepts NULL.  Deassign the irqfd
 *  first (KVM keeps its own references, but the line stops working). */
CVMM_EXPORT void irq_level_notifier_destroy(struct irq_level_notifier *n);

/** The irqfd (KVM_IRQFD's fd), owned by @n; -EINVAL for NULL. */
CVMM_EXPORT int irq_level_notifier_fd(const struct irq_level_notifier *n);

/** The resample fd (KVM_IRQFD's resamplefd; poll it for POLLIN), owned by
 *  @n; -EINVAL for NULL. */
CVMM_EXPORT int
irq_level_notifier_resample_fd(const struct irq_level_notifier *n);

/**
 * Fill @line to drive @n (see above).  @n must outlive the line.
 * Errors: -EINVAL (NULL argument).
 */
CVMM_EXPORT int irq_level_notifier_line(struct irq_level_notifier *n,
					struct irq_line *line);

/**
 * The resample fd is readable (or may be): consume it, and signal the
 * irqfd again if the line is still high.  Returns 1 when it re-asserted,
 * 0 when not (level low, or nothing to consume), or a negative errno from
 * read()/write().
 */
CVMM_EXPORT int irq_level_notifier_resample(struct irq_level_notifier *n);

/** The level the device last set: true while asserted.  False for NULL. */
CVMM_EXPORT bool irq_level_notifier_level(const struct irq_level_notifier *n);

#ifdef __cplusplus
}
#endif

#endif /* CVMM_DEVICES_IRQ_H */
