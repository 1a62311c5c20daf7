/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Interrupt lines, MSI sinks and eventfd-backed notifiers. */
#include <cvmm/devices/irq.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct event_notifier {
	int fd;
	unsigned flags;
};

bool irq_line_connected(const struct irq_line *line)
{
	return line && line->set;
}

int irq_line_set(const struct irq_line *line, bool level)
{
	if (!irq_line_connected(line))
		return 0;
	return line->set(line->opaque, level);
}

int irq_line_assert(const struct irq_line *line)
{
	return irq_line_set(line, true);
}

int irq_line_deassert(const struct irq_line *line)
{
	return irq_line_set(line, false);
}

int irq_line_pulse(const struct irq_line *line)
{
	int ret;

	if (!line)
		return 0;
	if (line->pulse)
		return line->pulse(line->opaque);
	if (!line->set)
		return 0;
	ret = line->set(line->opaque, true);
	if (ret)
		return ret;
	return line->set(line->opaque, false);
}

bool msi_sink_connected(const struct msi_sink *sink)
{
	return sink && sink->send;
}

int msi_sink_send(const struct msi_sink *sink, uint64_t address, uint32_t data)
{
	if (!msi_sink_connected(sink))
		return 0;
	return sink->send(sink->opaque, address, data);
}

int event_notifier_create(unsigned flags, struct event_notifier **out)
{
	struct event_notifier *n;
	int efd_flags = EFD_NONBLOCK | EFD_CLOEXEC;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (flags & ~(unsigned)EVENT_NOTIFIER_SEMAPHORE)
		return -EINVAL;
	if (flags & EVENT_NOTIFIER_SEMAPHORE)
		efd_flags |= EFD_SEMAPHORE;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->fd = eventfd(0, efd_flags);
	if (n->fd < 0) {
		int err = -errno;

		free(n);
		return err;
	}
	n->flags = flags;
	*out = n;
	return 0;
}

void event_notifier_destroy(struct event_notifier *n)
{
	if (!n)
		return;
	close(n->fd);
	free(n);
}

int event_notifier_fd(const struct event_notifier *n)
{
	return n ? n->fd : -EINVAL;
}

int event_notifier_signal(struct event_notifier *n)
{
	uint64_t one = 1;
	ssize_t r;

	if (!n)
		return -EINVAL;
	do {
		r = write(n->fd, &one, sizeof(one));
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EAGAIN ? 0 : -errno;
	return 0;
}

int event_notifier_consume(struct event_notifier *n)
{
	uint64_t v;
	ssize_t r;

	if (!n)
		return -EINVAL;
	do {
		r = read(n->fd, &v, sizeof(v));
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EAGAIN ? 0 : -errno;
	if (r != (ssize_t)sizeof(v))
		return -EIO;
	return v > INT_MAX ? INT_MAX : (int)v;
}

int event_notifier_wait(struct event_notifier *n, int timeout_ms)
{
	struct pollfd pfd;
	int r;

	if (!n)
		return -EINVAL;
	pfd.fd = n->fd;
	pfd.events = POLLIN;
	pfd.revents = 0;
	r = poll(&pfd, 1, timeout_ms < 0 ? -1 : timeout_ms);
	if (r < 0)
		return -errno;
	if (r == 0)
		return 0;
	return event_notifier_consume(n);
}

static int notifier_line_set(void *opaque, bool level)
{
	if (!level)
		return 0;
	return event_notifier_signal(opaque);
}

static int notifier_line_pulse(void *opaque)
{
	return event_notifier_signal(opaque);
}

int irq_line_from_notifier(struct irq_line *line, struct event_notifier *n)
{
	if (!line || !n)
		return -EINVAL;
	line->set = notifier_line_set;
	line->pulse = notifier_line_pulse;
	line->opaque = n;
	return 0;
}

static int notifier_msi_send(void *opaque, uint64_t address, uint32_t data)
{
	(void)address;
	(void)data;
	return event_notifier_signal(opaque);
}

int msi_sink_from_notifier(struct msi_sink *sink, struct event_notifier *n)
{
	if (!sink || !n)
		return -EINVAL;
	sink->send = notifier_msi_send;
	sink->opaque = n;
	return 0;
}

/* ------------------------------------------- level lines through irqfd */

struct irq_level_notifier {
	int fd;
	int resample_fd;
	atomic_bool level;
};

static int efd_signal(int fd)
{
	uint64_t one = 1;
	ssize_t r;

	do {
		r = write(fd, &one, sizeof(one));
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EAGAIN ? 0 : -errno;
	return 0;
}

int irq_level_notifier_create(struct irq_level_notifier **out)
{
	struct irq_level_notifier *n;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (n->fd < 0) {
		err = -errno;
		free(n);
		return err;
	}
	n->resample_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (n->resample_fd < 0) {
		err = -errno;
		close(n->fd);
		free(n);
		return err;
	}
	atomic_init(&n->level, false);
	*out = n;
	return 0;
}

void irq_level_notifier_destroy(struct irq_level_notifier *n)
{
	if (!n)
		return;
	close(n->fd);
	close(n->resample_fd);
	free(n);
}

int irq_level_notifier_fd(const struct irq_level_notifier *n)
{
	return n ? n->fd : -EINVAL;
}

int irq_level_notifier_resample_fd(const struct irq_level_notifier *n)
{
	return n ? n->resample_fd : -EINVAL;
}

bool irq_level_notifier_level(const struct irq_level_notifier *n)
{
	return n && atomic_load(&n->level);
}

static int level_line_set(void *opaque, bool level)
{
	struct irq_level_notifier *n = opaque;

	atomic_store(&n->level, level);
	return level ? efd_signal(n->fd) : 0;
}

static int level_line_pulse(void *opaque)
{
	struct irq_level_notifier *n = opaque;

	return efd_signal(n->fd);
}

int irq_level_notifier_line(struct irq_level_notifier *n, struct irq_line *line)
{
	if (!n || !line)
		return -EINVAL;
	line->set = level_line_set;
	line->pulse = level_line_pulse;
	line->opaque = n;
	return 0;
}

int irq_level_notifier_resample(struct irq_level_notifier *n)
{
	uint64_t v;
	ssize_t r;
	int ret;

	if (!n)
		return -EINVAL;
	do {
		r = read(n->resample_fd, &v, sizeof(v));
	} while (r < 0 && errno == EINTR);
	if (r < 0 && errno != EAGAIN)
		return -errno;
	/* Read the level only after consuming: an end of interrupt that
	 * comes later signals the fd again and is not lost. */
	if (r < 0 || !atomic_load(&n->level))
		return 0;
	ret = efd_signal(n->fd);
	return ret ? ret : 1;
}
