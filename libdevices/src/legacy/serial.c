/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* 16550A UART model.  See serial.h. */
#include <cvmm/devices/serial.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Register offsets (DLAB = 0 unless noted). */
enum {
	REG_DATA = 0, /* RBR read / THR write; DLL with DLAB */
	REG_IER = 1,  /* DLM with DLAB */
	REG_IIR = 2,  /* IIR read / FCR write */
	REG_LCR = 3,
	REG_MCR = 4,
	REG_LSR = 5,
	REG_MSR = 6,
	REG_SCR = 7,
};

#define IER_RDI	 0x01 /* received data available */
#define IER_THRI 0x02 /* THR empty */
#define IER_RLSI 0x04 /* receiver line status */
#define IER_MSI	 0x08 /* modem status */
#define IER_MASK 0x0f

#define IIR_NO_INT  0x01
#define IIR_MSI	    0x00
#define IIR_THRI    0x02
#define IIR_RDI	    0x04
#define IIR_RLSI    0x06
#define IIR_TIMEOUT 0x0c
#define IIR_FIFO_ON 0xc0

#define FCR_ENABLE   0x01
#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04
#define FCR_KEEP     0xc9 /* enable, DMA mode, trigger level */

#define LCR_DLAB 0x80

#define MCR_DTR	 0x01
#define MCR_RTS	 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f

#define LSR_DR	     0x01
#define LSR_OE	     0x02
#define LSR_PE	     0x04
#define LSR_FE	     0x08
#define LSR_BI	     0x10
#define LSR_THRE     0x20
#define LSR_TEMT     0x40
#define LSR_ERR_BITS (LSR_OE | LSR_PE | LSR_FE | LSR_BI)

#define MSR_DCTS  0x01
#define MSR_DDSR  0x02
#define MSR_TERI  0x04
#define MSR_DDCD  0x08
#define MSR_DELTA 0x0f
#define MSR_CTS	  0x10
#define MSR_DSR	  0x20
#define MSR_RI	  0x40
#define MSR_DCD	  0x80
/* Modem lines when not in loopback: a connected, ready terminal. */
#define MSR_IDLE  (MSR_DCD | MSR_DSR | MSR_CTS)

#define FIFO_SIZE 16u

/* Bytes one locked section may transmit: a bus access is at most 8 bytes. */
#define OUT_PENDING_MAX 16u

struct serial {
	pthread_mutex_t lock;
	/* Serialises output delivery, which runs without @lock so the output
	 * callback may call back into the device.  Recursive: an output
	 * callback that itself writes THR delivers on the same thread. */
	pthread_mutex_t out_lock;
	struct irq_line irq;
	bool irq_level;
	void (*out)(void *opaque, const uint8_t *buf, size_t len);
	void *out_opaque;
	int out_fd;
	uint64_t dropped;
	void (*input_space)(void *opaque);
	void *input_space_opaque;

	uint8_t ier, lcr, mcr, msr, scr, dll, dlm, fcr;
	uint8_t lsr_err; /* OE/PE/FE/BI, cleared by reading LSR */
	bool thr_ipending;

	uint8_t fifo[FIFO_SIZE]; /* hardware receive FIFO */
	unsigned fifo_head, fifo_count;

	uint8_t *in; /* host-side input ring */
	size_t in_cap, in_head, in_count;

	/* work for after the unlock (see unlock_deliver()) */
	uint8_t out_pending[OUT_PENDING_MAX];
	unsigned out_npending;
	bool space_pending;
};

void serial_config_init(struct serial_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->out_fd = -1;
	cfg->input_capacity = SERIAL_INPUT_DEFAULT;
}

static unsigned rx_capacity(const struct serial *s)
{
	return (s->fcr & FCR_ENABLE) ? FIFO_SIZE : 1;
}

static unsigned rx_trigger(const struct serial *s)
{
	static const unsigned levels[4] = {1, 4, 8, 14};

	return levels[s->fcr >> 6];
}

static void fifo_push(struct serial *s, uint8_t b)
{
	s->fifo[(s->fifo_head + s->fifo_count) % FIFO_SIZE] = b;
	s->fifo_count++;
}

/* Move host input into the FIFO while it has room (not in loopback). */
static void refill(struct serial *s)
{
	if (s->mcr & MCR_LOOP)
		return;
	while (s->fifo_count < rx_capacity(s) && s->in_count > 0) {
		fifo_push(s, s->in[s->in_head]);
		s->in_head = (s->in_head + 1) % s->in_cap;
		s->in_count--;
	}
}

/* refill() on a guest action: tell the host when a full buffer got room. */
static void guest_refill(struct serial *s)
{
	bool was_full = s->in_count == s->in_cap;

	refill(s);
	if (was_full && s->in_count < s->in_cap && s->input_space)
		s->space_pending = true; /* called after the unlock */
}

static uint8_t pending_id(const struct serial *s)
{
	if ((s->ier & IER_RLSI) && (s->lsr_err & LSR_ERR_BITS))
		return IIR_RLSI;
	if ((s->ier & IER_RDI) && s->fifo_count > 0) {
		if ((s->fcr & FCR_ENABLE) && s->fifo_count < rx_trigger(s))
			return IIR_TIMEOUT;
		return IIR_RDI;
	}
	if ((s->ier & IER_THRI) && s->thr_ipending)
		return IIR_THRI;
	if ((s->ier & IER_MSI) && (s->msr & MSR_DELTA))
		return IIR_MSI;
	return IIR_NO_INT;
}

static void update_irq(struct serial *s)
{
	bool level = pending_id(s) != IIR_NO_INT && (s->mcr & MCR_OUT2);

	if (level != s->irq_level) {
		s->irq_level = level;
		irq_line_set(&s->irq, level);
	}
}

static void transmit(struct serial *s, uint8_t b)
{
	if (s->mcr & MCR_LOOP) {
		if (s->fifo_count < rx_capacity(s))
			fifo_push(s, b);
		else
			s->lsr_err |= LSR_OE;
		return;
	}
	if (!s->out && s->out_fd < 0)
		return;
	if (s->out_npending < OUT_PENDING_MAX)
		s->out_pending[s->out_npending++] = b;
	else
		s->dropped++; /* cannot happen: at most 8 per locked section */
}

/* Write @len bytes to the output fd; returns the bytes that did not go. */
static size_t write_fd(int fd, const uint8_t *b, size_t len)
{
	size_t done = 0;

	/* bounded: each pass writes at least one byte or stops */
	while (done < len) {
		ssize_t r = write(fd, b + done, len - done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		done += (size_t)r;
	}
	return len - done;
}

/*
 * Release the device lock, then do what the locked section left for later:
 * deliver transmitted bytes (output callback or fd) and call input_space.
 * Neither runs under the device lock, so both may call back into the
 * device (an output callback echoing input with serial_input(), or reading
 * a register).  Output stays in the order of the locked sections for
 * writes the guest serialises (an OUT completes only after its delivery).
 */
static void unlock_deliver(struct serial *s)
{
	uint8_t buf[OUT_PENDING_MAX];
	unsigned n = s->out_npending;
	bool space = s->space_pending;
	size_t lost = 0;

	memcpy(buf, s->out_pending, n);
	s->out_npending = 0;
	s->space_pending = false;
	pthread_mutex_unlock(&s->lock);

	if (n > 0) {
		pthread_mutex_lock(&s->out_lock);
		if (s->out)
			s->out(s->out_opaque, buf, n);
		else if (s->out_fd >= 0)
			lost = write_fd(s->out_fd, buf, n);
		pthread_mutex_unlock(&s->out_lock);
		if (lost) {
			pthread_mutex_lock(&s->lock);
			s->dropped += lost;
			pthread_mutex_unlock(&s->lock);
		}
	}
	if (space && s->input_space)
		s->input_space(s->input_space_opaque);
}

/* MSR modem lines for the current MCR, with delta bits against the old. */
static void update_msr(struct serial *s)
{
	uint8_t old = s->msr, lines, delta = 0;

	if (s->mcr & MCR_LOOP) {
		lines = 0;
		if (s->mcr & MCR_DTR)
			lines |= MSR_DSR;
		if (s->mcr & MCR_RTS)
			lines |= MSR_CTS;
		if (s->mcr & MCR_OUT1)
			lines |= MSR_RI;
		if (s->mcr & MCR_OUT2)
			lines |= MSR_DCD;
	} else {
		lines = MSR_IDLE;
	}
	if ((old ^ lines) & MSR_CTS)
		delta |= MSR_DCTS;
	if ((old ^ lines) & MSR_DSR)
		delta |= MSR_DDSR;
	if ((old & MSR_RI) && !(lines & MSR_RI))
		delta |= MSR_TERI;
	if ((old ^ lines) & MSR_DCD)
		delta |= MSR_DDCD;
	s->msr = lines | ((old | delta) & MSR_DELTA);
}

static void reset_locked(struct serial *s)
{
	s->ier = 0;
	s->lcr = 0;
	s->mcr = 0;
	s->msr = MSR_IDLE;
	s->scr = 0;
	s->dll = 0x0c; /* 9600 baud */
	s->dlm = 0;
	s->fcr = 0;
	s->lsr_err = 0;
	s->thr_ipending = false;
	s->fifo_head = 0;
	s->fifo_count = 0;
	refill(s);
	update_irq(s);
}

int serial_create(const struct serial_config *cfg, struct serial **out)
{
	struct serial *s;
	size_t cap;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!cfg || cfg->input_capacity > SERIAL_INPUT_MAX)
		return -EINVAL;
	cap = cfg->input_capacity ? cfg->input_capacity : SERIAL_INPUT_DEFAULT;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->in = malloc(cap);
	if (!s->in || pthread_mutex_init(&s->lock, NULL) != 0) {
		free(s->in);
		free(s);
		return -ENOMEM;
	}
	{
		pthread_mutexattr_t a;
		int r = pthread_mutexattr_init(&a);

		if (r == 0) {
			r = pthread_mutexattr_settype(&a,
						      PTHREAD_MUTEX_RECURSIVE);
			if (r == 0)
				r = pthread_mutex_init(&s->out_lock, &a);
			pthread_mutexattr_destroy(&a);
		}
		if (r != 0) {
			pthread_mutex_destroy(&s->lock);
			free(s->in);
			free(s);
			return -ENOMEM;
		}
	}
	s->in_cap = cap;
	s->irq = cfg->irq;
	s->out = cfg->out;
	s->out_opaque = cfg->out_opaque;
	s->out_fd = cfg->out_fd;
	s->input_space = cfg->input_space;
	s->input_space_opaque = cfg->input_space_opaque;
	reset_locked(s);
	*out = s;
	return 0;
}

void serial_destroy(struct serial *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->out_lock);
	pthread_mutex_destroy(&s->lock);
	free(s->in);
	free(s);
}

void serial_reset(struct serial *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	reset_locked(s);
	pthread_mutex_unlock(&s->lock);
}

static uint8_t read_locked(struct serial *s, unsigned reg)
{
	uint8_t v = 0;

	switch (reg) {
	case REG_DATA:
		if (s->lcr & LCR_DLAB)
			return s->dll;
		if (s->fifo_count > 0) {
			v = s->fifo[s->fifo_head];
			s->fifo_head = (s->fifo_head + 1) % FIFO_SIZE;
			s->fifo_count--;
			guest_refill(s);
		}
		break;
	case REG_IER:
		if (s->lcr & LCR_DLAB)
			return s->dlm;
		return s->ier;
	case REG_IIR:
		v = pending_id(s);
		if (v == IIR_THRI)
			s->thr_ipending = false;
		if (s->fcr & FCR_ENABLE)
			v |= IIR_FIFO_ON;
		break;
	case REG_LCR:
		return s->lcr;
	case REG_MCR:
		return s->mcr;
	case REG_LSR:
		v = LSR_THRE | LSR_TEMT | s->lsr_err;
		if (s->fifo_count > 0)
			v |= LSR_DR;
		s->lsr_err = 0;
		break;
	case REG_MSR:
		v = s->msr;
		s->msr &= (uint8_t)~MSR_DELTA;
		break;
	case REG_SCR:
		return s->scr;
	default:
		return 0xff;
	}
	update_irq(s);
	return v;
}

static void write_fcr(struct serial *s, uint8_t val)
{
	if ((val ^ s->fcr) & FCR_ENABLE) {
		/* enabling or disabling the FIFOs clears them */
		s->fifo_head = 0;
		s->fifo_count = 0;
	}
	if (val & FCR_CLEAR_RX) {
		s->fifo_head = 0;
		s->fifo_count = 0;
	}
	s->fcr = (val & FCR_ENABLE) ? (val & FCR_KEEP) : 0;
	guest_refill(s);
}

static void write_locked(struct serial *s, unsigned reg, uint8_t val)
{
	switch (reg) {
	case REG_DATA:
		if (s->lcr & LCR_DLAB) {
			s->dll = val;
			return;
		}
		transmit(s, val);
		s->thr_ipending = true; /* sent at once: THR is empty again */
		break;
	case REG_IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = val;
			return;
		}
		val &= IER_MASK;
		if ((val & IER_THRI) && !(s->ier & IER_THRI))
			s->thr_ipending = true;
		s->ier = val;
		break;
	case REG_IIR:
		write_fcr(s, val);
		break;
	case REG_LCR:
		s->lcr = val;
		return;
	case REG_MCR: {
		uint8_t old = s->mcr;

		s->mcr = val & MCR_MASK;
		if ((old ^ s->mcr) != 0)
			update_msr(s);
		if ((old & MCR_LOOP) && !(s->mcr & MCR_LOOP))
			guest_refill(s);
		break;
	}
	case REG_LSR:
	case REG_MSR:
		return; /* read-only (factory test registers) */
	case REG_SCR:
		s->scr = val;
		return;
	default:
		return;
	}
	update_irq(s);
}

uint8_t serial_reg_read(struct serial *s, unsigned reg)
{
	uint8_t v;

	if (!s)
		return 0xff;
	pthread_mutex_lock(&s->lock);
	v = read_locked(s, reg);
	unlock_deliver(s);
	return v;
}

void serial_reg_write(struct serial *s, unsigned reg, uint8_t val)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->lock);
	write_locked(s, reg, val);
	unlock_deliver(s);
}

static void bus_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
	struct serial *s = opaque;
	uint8_t *d = data;

	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < size && i < 8; i++)
		d[i] = offset + i < SERIAL_NR_REGS
			       ? read_locked(s, (unsigned)offset + i)
			       : 0xff;
	unlock_deliver(s);
}

static void bus_write(void *opaque, uint64_t offset, const void *data,
		      unsigned size)
{
	struct serial *s = opaque;
	const uint8_t *d = data;

	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < size && i < 8; i++)
		if (offset + i < SERIAL_NR_REGS)
			write_locked(s, (unsigned)offset + i, d[i]);
	unlock_deliver(s);
}

static const struct io_bus_ops serial_ops = {bus_read, bus_write};

const struct io_bus_ops *serial_bus_ops(void)
{
	return &serial_ops;
}

/* Append up to len bytes to the host ring; returns bytes taken. */
static size_t in_append(struct serial *s, const uint8_t *b, size_t len)
{
	size_t n = s->in_cap - s->in_count;

	if (len < n)
		n = len;
	for (size_t i = 0; i < n; i++)
		s->in[(s->in_head + s->in_count + i) % s->in_cap] = b[i];
	s->in_count += n;
	return n;
}

ssize_t serial_input(struct serial *s, const void *buf, size_t len)
{
	size_t n;

	if (!s || (!buf && len > 0))
		return -EINVAL;
	pthread_mutex_lock(&s->lock);
	n = in_append(s, buf, len);
	refill(s);
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return (ssize_t)n;
}

ssize_t serial_input_from_fd(struct serial *s, int fd)
{
	uint8_t tmp[512];
	size_t space;
	ssize_t r;

	if (!s || fd < 0)
		return -EINVAL;
	space = serial_input_space(s);
	if (space == 0)
		return 0;
	if (space > sizeof(tmp))
		space = sizeof(tmp);
	do {
		r = read(fd, tmp, space);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	if (r == 0)
		return -EPIPE;
	/* only this function and serial_input add input; if another thread
	 * raced us, whatever does not fit is dropped (bounded either way) */
	return serial_input(s, tmp, (size_t)r);
}

size_t serial_input_space(struct serial *s)
{
	size_t n;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->lock);
	n = s->in_cap - s->in_count;
	pthread_mutex_unlock(&s->lock);
	return n;
}

uint64_t serial_output_dropped(struct serial *s)
{
	uint64_t n;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->lock);
	n = s->dropped;
	pthread_mutex_unlock(&s->lock);
	return n;
}

bool serial_irq_level(struct serial *s)
{
	bool l;

	if (!s)
		return false;
	pthread_mutex_lock(&s->lock);
	l = s->irq_level;
	pthread_mutex_unlock(&s->lock);
	return l;
}
