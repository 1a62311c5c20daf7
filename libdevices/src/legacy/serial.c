/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* 16550A UART model.  See serial.h. */
#include <cvmm/devices/serial.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

/* write() calls one drain may make before it leaves the rest to the VMM's
 * serial_output_flush(): bounds the time a vCPU spends writing output that
 * other vCPUs keep producing.  Two calls empty a wrapped buffer. */
#define OUT_DRAIN_CALLS 8u

enum out_kind {
	OUT_NONE,
	OUT_CALLBACK,
	OUT_FD,	  /* write(): O_NONBLOCK descriptor or regular file */
	OUT_SOCK, /* send(MSG_DONTWAIT | MSG_NOSIGNAL) */
};

struct serial {
	pthread_mutex_t lock;
	/* Serialises output callback deliveries, which run without @lock so
	 * the callback may call back into the device.  Recursive: a callback
	 * that itself writes THR delivers on the same thread.  (The fd path
	 * needs no such lock: one thread at a time owns ob_draining.) */
	pthread_mutex_t out_lock;
	struct irq_line irq;
	bool irq_level;
	enum out_kind out_kind;
	void (*out)(void *opaque, const uint8_t *buf, size_t len);
	void *out_opaque;
	int out_fd;
	uint64_t dropped;
	void (*output_poll)(void *opaque);
	void *output_poll_opaque;

	/* fd output: bounded ring.  Bytes [ob_head, ob_head + ob_count) are
	 * only read by the one draining thread (ob_draining) and only
	 * removed by it; THR writes append after them under @lock. */
	uint8_t *ob;
	size_t ob_cap, ob_head, ob_count;
	bool ob_draining; /* a thread is writing the ring to the fd */
	bool ob_blocked;  /* the fd said EAGAIN: wait for a flush */
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
	bool drain_pending; /* this section made its thread the drainer */
	bool space_pending;
};

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
	switch (s->out_kind) {
	case OUT_NONE:
		return;
	case OUT_CALLBACK:
		if (s->out_npending < OUT_PENDING_MAX)
			s->out_pending[s->out_npending++] = b;
		else
			s->dropped++; /* cannot happen: 8 per locked section */
		return;
	case OUT_FD:
	case OUT_SOCK:
		if (s->ob_count < s->ob_cap) {
			s->ob[(s->ob_head + s->ob_count) % s->ob_cap] = b;
			s->ob_count++;
		} else {
			s->dropped++; /* bounded: drop and count */
		}
		if (!s->ob_blocked && !s->ob_draining) {
			/* this thread writes the ring after the unlock */
			s->ob_draining = true;
			s->drain_pending = true;
		}
		return;
	}
}

/* One non-blocking write of @len bytes to the output fd. */
static ssize_t out_write(struct serial *s, const uint8_t *b, size_t len)
{
	if (s->out_kind == OUT_SOCK)
		return send(s->out_fd, b, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	return write(s->out_fd, b, len);
}

/*
 * Write the output ring to the fd.  Called without @lock by the thread that
 * set ob_draining; clears it.  Stops when the ring is empty, the fd is full
 * (ob_blocked: only serial_output_flush() writes again), after
 * OUT_DRAIN_CALLS writes, or on an error (everything buffered is dropped).
 * Returns the bytes left in the ring or a negative errno; *@poll tells the
 * caller to ask the VMM for a flush.
 */
static ssize_t drain(struct serial *s, bool *poll)
{
	ssize_t ret = 0;
	unsigned calls = 0;

	*poll = false;
	pthread_mutex_lock(&s->lock);
	while (s->ob_count > 0) {
		const uint8_t *p = s->ob + s->ob_head;
		size_t len = s->ob_cap - s->ob_head;
		ssize_t r;
		int err;

		if (calls++ == OUT_DRAIN_CALLS) {
			*poll = true; /* budget spent: the VMM continues */
			break;
		}
		if (len > s->ob_count)
			len = s->ob_count;
		/* [p, p + len) is ours alone: THR writes append after it */
		pthread_mutex_unlock(&s->lock);
		r = out_write(s, p, len);
		err = r < 0 ? errno : 0;
		pthread_mutex_lock(&s->lock);
		if (r > 0) {
			s->ob_head = (s->ob_head + (size_t)r) % s->ob_cap;
			s->ob_count -= (size_t)r;
			continue;
		}
		if (err == EINTR)
			continue;
		if (err == EAGAIN || err == EWOULDBLOCK) {
			s->ob_blocked = true;
			*poll = true;
			break;
		}
		/* a hard error (or a write of nothing): drop what waits */
		s->dropped += s->ob_count;
		s->ob_head = 0;
		s->ob_count = 0;
		ret = r < 0 ? -err : -EIO;
		break;
	}
	s->ob_draining = false;
	if (ret == 0)
		ret = (ssize_t)s->ob_count;
	pthread_mutex_unlock(&s->lock);
	if (!s->output_poll)
		*poll = false;
	return ret;
}

/*
 * Release the device lock, then do what the locked section left for later:
 * deliver transmitted bytes (output callback, or the fd ring when this
 * thread became its drainer), call output_poll and input_space.  None runs
 * under the device lock, so each may call back into the device (an output
 * callback echoing input with serial_input(), or reading a register).
 * Callback output stays in the order of the locked sections for writes the
 * guest serialises (an OUT completes only after its delivery); fd output
 * is in ring order.
 */
static void unlock_deliver(struct serial *s)
{
	uint8_t buf[OUT_PENDING_MAX];
	unsigned n = s->out_npending;
	bool space = s->space_pending, drain_now = s->drain_pending;
	bool poll = false;

	memcpy(buf, s->out_pending, n);
	s->out_npending = 0;
	s->space_pending = false;
	s->drain_pending = false;
	pthread_mutex_unlock(&s->lock);

	if (n > 0) {
		pthread_mutex_lock(&s->out_lock);
		s->out(s->out_opaque, buf, n);
		pthread_mutex_unlock(&s->out_lock);
	}
	if (drain_now)
		(void)drain(s, &poll);
	if (poll)
		s->output_poll(s->output_poll_opaque);
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

/* How THR bytes reach out_fd: a socket is sent to with MSG_DONTWAIT, a
 * regular file written as it is, anything else must be O_NONBLOCK. */
static int out_fd_kind(int fd, enum out_kind *kind)
{
	struct stat st;
	int fl;

	if (fd < 0)
		return -EBADF;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fstat(fd, &st) != 0)
		return -EBADF;
	if (S_ISSOCK(st.st_mode))
		*kind = OUT_SOCK;
	else if (S_ISREG(st.st_mode) || (fl & O_NONBLOCK))
		*kind = OUT_FD;
	else
		return -EINVAL; /* a write could block the vCPU */
	return 0;
}

static int init_locks(struct serial *s)
{
	pthread_mutexattr_t a;
	int r;

	if (pthread_mutex_init(&s->lock, NULL) != 0)
		return -ENOMEM;
	/* recursive: an output callback that writes THR delivers nested */
	r = pthread_mutexattr_init(&a);
	if (r == 0) {
		r = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
		if (r == 0)
			r = pthread_mutex_init(&s->out_lock, &a);
		pthread_mutexattr_destroy(&a);
	}
	if (r != 0) {
		pthread_mutex_destroy(&s->lock);
		return -ENOMEM;
	}
	return 0;
}

int serial_create(const struct serial_config *cfg, struct serial **out)
{
	static const struct serial_config defaults;
	enum out_kind kind = OUT_NONE;
	struct serial *s;
	size_t in_cap, ob_cap = 0;
	int ret;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!cfg)
		cfg = &defaults;
	if (cfg->input_capacity > SERIAL_INPUT_MAX ||
	    cfg->output_capacity > SERIAL_OUTPUT_MAX ||
	    (cfg->out && cfg->use_out_fd))
		return -EINVAL;
	in_cap = cfg->input_capacity ? cfg->input_capacity
				     : SERIAL_INPUT_DEFAULT;
	if (cfg->out) {
		kind = OUT_CALLBACK;
	} else if (cfg->use_out_fd) {
		ret = out_fd_kind(cfg->out_fd, &kind);
		if (ret)
			return ret;
		ob_cap = cfg->output_capacity ? cfg->output_capacity
					      : SERIAL_OUTPUT_DEFAULT;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->in = malloc(in_cap);
	s->ob = ob_cap ? malloc(ob_cap) : NULL;
	if (!s->in || (ob_cap && !s->ob) || init_locks(s) != 0) {
		free(s->ob);
		free(s->in);
		free(s);
		return -ENOMEM;
	}
	s->in_cap = in_cap;
	s->ob_cap = ob_cap;
	s->irq = cfg->irq;
	s->out_kind = kind;
	s->out = cfg->out;
	s->out_opaque = cfg->out_opaque;
	s->out_fd = kind == OUT_FD || kind == OUT_SOCK ? cfg->out_fd : -1;
	if (s->out_fd >= 0) {
		s->output_poll = cfg->output_poll;
		s->output_poll_opaque = cfg->output_poll_opaque;
	}
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
	free(s->ob);
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

int serial_output_fd(struct serial *s)
{
	if (!s)
		return -EINVAL;
	return s->out_fd >= 0 ? s->out_fd : -ENOENT; /* fixed at create */
}

ssize_t serial_output_flush(struct serial *s)
{
	ssize_t left;
	bool poll;

	if (!s)
		return -EINVAL;
	if (s->out_fd < 0)
		return 0;
	pthread_mutex_lock(&s->lock);
	s->ob_blocked = false; /* the VMM says the fd is writable */
	if (s->ob_draining) {
		/* another thread writes; it sees our bytes before it stops */
		left = (ssize_t)s->ob_count;
		pthread_mutex_unlock(&s->lock);
		return left;
	}
	s->ob_draining = true;
	pthread_mutex_unlock(&s->lock);
	left = drain(s, &poll);
	if (poll)
		s->output_poll(s->output_poll_opaque);
	return left;
}

size_t serial_output_pending(struct serial *s)
{
	size_t n;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->lock);
	n = s->ob_count;
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
