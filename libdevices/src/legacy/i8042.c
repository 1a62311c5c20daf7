/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* i8042 keyboard controller model.  See i8042.h. */
#include <cvmm/devices/i8042.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define STR_OBF	    0x01
#define STR_SYS	    0x04
#define STR_CMDDAT  0x08
#define STR_KEYLOCK 0x10 /* 1 = keyboard not inhibited */
#define STR_AUXDATA 0x20

#define CTR_KBDINT 0x01
#define CTR_SYS	   0x04
#define CTR_KBDDIS 0x10
#define CTR_AUXDIS 0x20
#define CTR_XLATE  0x40

#define OUTP_RESET 0x01 /* 0 = CPU held in reset */
#define OUTP_A20   0x02

#define QUEUE_SIZE 16u

enum pending {
	PEND_NONE = 0,
	PEND_RAM,      /* write controller RAM byte (index in pend_arg) */
	PEND_OUTP,     /* write output port */
	PEND_KBD_OBUF, /* write keyboard output buffer */
	PEND_AUX_OBUF, /* write AUX output buffer (loopback) */
	PEND_AUX_DEV,  /* byte for the AUX device */
	PEND_KBD_ARG,  /* parameter of a keyboard command */
};

struct i8042 {
	pthread_mutex_t lock;
	struct irq_line irq;
	bool irq_level;
	void (*reset)(void *opaque);
	void *reset_opaque;
	unsigned resets;

	uint8_t ram[32]; /* ram[0] is the configuration byte */
	uint8_t status;	 /* SYS and CMD/DAT bits; OBF/AUXDATA computed */
	uint8_t outp;
	uint8_t last; /* last byte read, returned when empty */
	enum pending pend;
	uint8_t pend_arg;
	uint8_t kbd_cmd; /* keyboard command waiting for its parameter */
	uint8_t scanset;

	uint8_t q[QUEUE_SIZE];
	bool q_aux[QUEUE_SIZE];
	bool q_ctl[QUEUE_SIZE]; /* produced by the controller, not the kbd */
	unsigned q_head, q_count;
};

static void push_src(struct i8042 *k, uint8_t b, bool aux, bool ctl)
{
	unsigned i;

	if (k->q_count >= QUEUE_SIZE)
		return; /* bounded: drop */
	i = (k->q_head + k->q_count) % QUEUE_SIZE;
	k->q[i] = b;
	k->q_aux[i] = aux;
	k->q_ctl[i] = ctl;
	k->q_count++;
}

/* A keyboard byte. */
static void push(struct i8042 *k, uint8_t b, bool aux)
{
	push_src(k, b, aux, false);
}

/* A controller response. */
static void push_ctl(struct i8042 *k, uint8_t b)
{
	push_src(k, b, false, true);
}

/*
 * The controller's own output is a single latch: a new controller command
 * discards a response the guest left unread.  Linux's i8042_check_aux()
 * relies on it: __i8042_command() sees the AUX loopback echo without
 * AUXDATA and returns without reading it; the AUX interface test that
 * follows must then read its own answer (0x01), not the stale echo, and
 * nothing must be left behind to reach the keyboard driver later.
 * Keyboard bytes are kept, in order.  Bounded: QUEUE_SIZE steps.
 */
static void drop_ctl_responses(struct i8042 *k)
{
	unsigned n = 0;

	for (unsigned i = 0; i < k->q_count && i < QUEUE_SIZE; i++) {
		unsigned from = (k->q_head + i) % QUEUE_SIZE;
		unsigned to = (k->q_head + n) % QUEUE_SIZE;

		if (k->q_ctl[from])
			continue;
		k->q[to] = k->q[from];
		k->q_aux[to] = k->q_aux[from];
		k->q_ctl[to] = false;
		n++;
	}
	k->q_count = n;
}

static bool irq_wanted(const struct i8042 *k)
{
	return k->q_count > 0 && !k->q_aux[k->q_head] &&
	       (k->ram[0] & CTR_KBDINT);
}

static void update_irq(struct i8042 *k, bool edge)
{
	bool level = irq_wanted(k);

	if (edge && k->irq_level && level) {
		/* a new byte replaced the one just read: make an edge */
		irq_line_set(&k->irq, false);
		k->irq_level = false;
	}
	if (level != k->irq_level) {
		k->irq_level = level;
		irq_line_set(&k->irq, level);
	}
}

int i8042_create(const struct i8042_config *cfg, struct i8042 **out)
{
	static const struct i8042_config defaults;
	struct i8042 *k;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!cfg)
		cfg = &defaults;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	if (pthread_mutex_init(&k->lock, NULL) != 0) {
		free(k);
		return -ENOMEM;
	}
	k->irq = cfg->kbd_irq;
	k->reset = cfg->reset;
	k->reset_opaque = cfg->reset_opaque;
	k->ram[0] = CTR_KBDINT | CTR_SYS | CTR_AUXDIS | CTR_XLATE;
	k->status = STR_SYS;
	k->outp = OUTP_RESET | OUTP_A20;
	k->scanset = 2;
	*out = k;
	return 0;
}

void i8042_destroy(struct i8042 *k)
{
	if (!k)
		return;
	pthread_mutex_destroy(&k->lock);
	free(k);
}

static uint8_t status_locked(const struct i8042 *k)
{
	uint8_t s = k->status | STR_KEYLOCK;

	if (k->q_count > 0) {
		s |= STR_OBF;
		if (k->q_aux[k->q_head])
			s |= STR_AUXDATA;
	}
	return s;
}

static uint8_t read_data_locked(struct i8042 *k)
{
	if (k->q_count > 0) {
		k->last = k->q[k->q_head];
		k->q_head = (k->q_head + 1) % QUEUE_SIZE;
		k->q_count--;
	}
	update_irq(k, true);
	return k->last;
}

/* Returns true when a reset was requested. */
static bool write_cmd_locked(struct i8042 *k, uint8_t cmd)
{
	bool reset = false;

	k->status |= STR_CMDDAT;
	k->pend = PEND_NONE;
	drop_ctl_responses(k);
	if (cmd >= 0x20 && cmd <= 0x3f) {
		push_ctl(k, k->ram[cmd & 0x1f]);
	} else if (cmd >= 0x60 && cmd <= 0x7f) {
		k->pend = PEND_RAM;
		k->pend_arg = cmd & 0x1f;
	} else if (cmd >= 0xf0) {
		/* pulse output lines: bit 0 low pulses the reset line */
		reset = !(cmd & 0x01);
	} else {
		switch (cmd) {
		case 0xa7: /* disable AUX */
			k->ram[0] |= CTR_AUXDIS;
			break;
		case 0xa8: /* enable AUX */
			k->ram[0] &= (uint8_t)~CTR_AUXDIS;
			break;
		case 0xa9: /* AUX interface test: clock line stuck low */
			push_ctl(k, 0x01);
			break;
		case 0xaa: /* controller self-test */
			k->status |= STR_SYS;
			k->ram[0] |= CTR_SYS;
			push_ctl(k, 0x55);
			break;
		case 0xab: /* keyboard interface test */
			push_ctl(k, 0x00);
			break;
		case 0xad: /* disable keyboard */
			k->ram[0] |= CTR_KBDDIS;
			break;
		case 0xae: /* enable keyboard */
			k->ram[0] &= (uint8_t)~CTR_KBDDIS;
			break;
		case 0xc0: /* read input port */
			push_ctl(k, 0x00);
			break;
		case 0xd0: /* read output port */
			push_ctl(k, k->outp);
			break;
		case 0xd1:
			k->pend = PEND_OUTP;
			break;
		case 0xd2:
			k->pend = PEND_KBD_OBUF;
			break;
		case 0xd3:
			k->pend = PEND_AUX_OBUF;
			break;
		case 0xd4:
			k->pend = PEND_AUX_DEV;
			break;
		case 0xdd: /* A20 off */
			k->outp &= (uint8_t)~OUTP_A20;
			break;
		case 0xdf: /* A20 on */
			k->outp |= OUTP_A20;
			break;
		default: /* unknown: ignored */
			break;
		}
	}
	/* also when a command only discarded an unread answer */
	update_irq(k, false);
	return reset;
}

static void kbd_command(struct i8042 *k, uint8_t b)
{
	if (k->pend == PEND_KBD_ARG) {
		k->pend = PEND_NONE;
		if (k->kbd_cmd == 0xf0 && b == 0) {
			push(k, 0xfa, false);
			push(k, k->scanset, false);
			return;
		}
		if (k->kbd_cmd == 0xf0 && b >= 1 && b <= 3)
			k->scanset = b;
		push(k, 0xfa, false);
		return;
	}
	switch (b) {
	case 0xff: /* reset */
		k->scanset = 2;
		push(k, 0xfa, false);
		push(k, 0xaa, false);
		break;
	case 0xf2: /* get id: MF2 keyboard */
		push(k, 0xfa, false);
		push(k, 0xab, false);
		push(k, 0x83, false);
		break;
	case 0xee: /* echo */
		push(k, 0xee, false);
		break;
	case 0xed: /* LEDs */
	case 0xf3: /* typematic rate */
	case 0xf0: /* scan code set */
		k->kbd_cmd = b;
		k->pend = PEND_KBD_ARG;
		push(k, 0xfa, false);
		break;
	default:
		push(k, 0xfa, false);
		break;
	}
}

static bool write_data_locked(struct i8042 *k, uint8_t b)
{
	bool reset = false;

	k->status &= (uint8_t)~STR_CMDDAT;
	switch (k->pend) {
	case PEND_RAM:
		k->ram[k->pend_arg & 0x1f] = b;
		if (k->pend_arg == 0) {
			if (b & CTR_SYS)
				k->status |= STR_SYS;
			else
				k->status &= (uint8_t)~STR_SYS;
		}
		k->pend = PEND_NONE;
		break;
	case PEND_OUTP:
		k->outp = b;
		k->pend = PEND_NONE;
		reset = !(b & OUTP_RESET);
		break;
	case PEND_KBD_OBUF:
		push(k, b, false);
		k->pend = PEND_NONE;
		break;
	case PEND_AUX_OBUF:
		/* no AUX port: echoed without AUXDATA (see header) */
		push_ctl(k, b);
		k->pend = PEND_NONE;
		break;
	case PEND_AUX_DEV:
		k->pend = PEND_NONE; /* no AUX device */
		break;
	case PEND_KBD_ARG:
	case PEND_NONE:
	default:
		kbd_command(k, b);
		break;
	}
	update_irq(k, false);
	return reset;
}

static void do_reset(struct i8042 *k)
{
	void (*cb)(void *);
	void *op;

	pthread_mutex_lock(&k->lock);
	k->resets++;
	cb = k->reset;
	op = k->reset_opaque;
	pthread_mutex_unlock(&k->lock);
	if (cb)
		cb(op);
}

uint8_t i8042_read_data(struct i8042 *k)
{
	uint8_t v;

	if (!k)
		return 0xff;
	pthread_mutex_lock(&k->lock);
	v = read_data_locked(k);
	pthread_mutex_unlock(&k->lock);
	return v;
}

uint8_t i8042_read_status(struct i8042 *k)
{
	uint8_t v;

	if (!k)
		return 0xff;
	pthread_mutex_lock(&k->lock);
	v = status_locked(k);
	pthread_mutex_unlock(&k->lock);
	return v;
}

void i8042_write_data(struct i8042 *k, uint8_t val)
{
	bool reset;

	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	reset = write_data_locked(k, val);
	pthread_mutex_unlock(&k->lock);
	if (reset)
		do_reset(k);
}

void i8042_write_cmd(struct i8042 *k, uint8_t cmd)
{
	bool reset;

	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	reset = write_cmd_locked(k, cmd);
	pthread_mutex_unlock(&k->lock);
	if (reset)
		do_reset(k);
}

unsigned i8042_reset_count(struct i8042 *k)
{
	unsigned n;

	if (!k)
		return 0;
	pthread_mutex_lock(&k->lock);
	n = k->resets;
	pthread_mutex_unlock(&k->lock);
	return n;
}

/* Port accesses wider than a byte: the first byte is the register, the
 * others read 0xff / are ignored (the ports are byte-wide). */
static void data_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
	memset(data, 0xff, size);
	if (offset == 0)
		*(uint8_t *)data = i8042_read_data(opaque);
}

static void data_write(void *opaque, uint64_t offset, const void *data,
		       unsigned size)
{
	if (offset == 0)
		i8042_write_data(opaque, *(const uint8_t *)data);
}

static void cmd_read(void *opaque, uint64_t offset, void *data, unsigned size)
{
	memset(data, 0xff, size);
	if (offset == 0)
		*(uint8_t *)data = i8042_read_status(opaque);
}

static void cmd_write(void *opaque, uint64_t offset, const void *data,
		      unsigned size)
{
	if (offset == 0)
		i8042_write_cmd(opaque, *(const uint8_t *)data);
}

static const struct io_bus_ops data_ops = {data_read, data_write};
static const struct io_bus_ops ctl_ops = {cmd_read, cmd_write};

const struct io_bus_ops *i8042_data_bus_ops(void)
{
	return &data_ops;
}

const struct io_bus_ops *i8042_cmd_bus_ops(void)
{
	return &ctl_ops;
}

int i8042_register(struct i8042 *k, struct io_bus *bus, uint64_t data_port,
		   uint64_t cmd_port)
{
	int ret;

	if (!k || !bus)
		return -EINVAL;
	/* refuse a taken command port before the data port is visible to
	 * vCPUs (the usual conflict); a racing registration is undone below */
	if (data_port == cmd_port ||
	    io_bus_find(bus, cmd_port, NULL, NULL) == 0)
		return -EEXIST;
	ret = io_bus_register(bus, data_port, 1, &data_ops, k);
	if (ret)
		return ret;
	ret = io_bus_register(bus, cmd_port, 1, &ctl_ops, k);
	if (ret && io_bus_unregister(bus, data_port) == -EDEADLK)
		io_bus_unregister_nowait(bus, data_port);
	return ret;
}
