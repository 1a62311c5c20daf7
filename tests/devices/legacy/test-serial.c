/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Unit tests for the 16550A UART model. */
#include "cvmm-check.h"
#include "irq-recorder.h"

#include <cvmm/devices/bus.h>
#include <cvmm/devices/serial.h>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
	RBR = 0,
	IER = 1,
	IIR = 2,
	FCR = 2,
	LCR = 3,
	MCR = 4,
	LSR = 5,
	MSR = 6,
	SCR = 7
};

struct outbuf {
	uint8_t buf[4096];
	size_t len;
};

static void out_cb(void *opaque, const uint8_t *b, size_t n)
{
	struct outbuf *o = opaque;

	for (size_t i = 0; i < n && o->len < sizeof(o->buf); i++)
		o->buf[o->len++] = b[i];
}

struct fixture {
	struct serial *s;
	struct irq_recorder rec;
	struct outbuf out;
};

static struct fixture fx;

static void setup_cap(size_t cap)
{
	struct serial_config cfg = {0};

	memset(&fx, 0, sizeof(fx));
	cfg.irq = irq_recorder_line(&fx.rec);
	cfg.out = out_cb;
	cfg.out_opaque = &fx.out;
	cfg.input_capacity = cap;
	ck_assert_int_eq(serial_create(&cfg, &fx.s), 0);
}

static void setup(void)
{
	setup_cap(0);
}

static void teardown(void)
{
	serial_destroy(fx.s);
	fx.s = NULL;
}

static uint8_t rd(unsigned reg)
{
	return serial_reg_read(fx.s, reg);
}

static void wr(unsigned reg, uint8_t v)
{
	serial_reg_write(fx.s, reg, v);
}

START_TEST(test_serial_reset_state)
{
	ck_assert_uint_eq(rd(IER), 0);
	ck_assert_uint_eq(rd(IIR), 0x01);
	ck_assert_uint_eq(rd(LCR), 0);
	ck_assert_uint_eq(rd(MCR), 0);
	ck_assert_uint_eq(rd(LSR), 0x60);
	ck_assert_uint_eq(rd(MSR), 0xb0);
	ck_assert_uint_eq(rd(SCR), 0);
	ck_assert(!serial_irq_level(fx.s));
	ck_assert_uint_eq(fx.rec.sets, 0);
	ck_assert_uint_eq(serial_reg_read(fx.s, 8), 0xff);
}
END_TEST

START_TEST(test_serial_create_errors)
{
	struct serial_config cfg = {0};
	struct serial *s = (void *)1;
	int p[2];

	ck_assert_int_eq(serial_create(&cfg, NULL), -EINVAL);
	ck_assert_int_eq(serial_create(NULL, NULL), -EINVAL);
	cfg.input_capacity = SERIAL_INPUT_MAX + 1;
	ck_assert_int_eq(serial_create(&cfg, &s), -EINVAL);
	ck_assert_ptr_null(s);
	cfg.input_capacity = 0;
	cfg.output_capacity = SERIAL_OUTPUT_MAX + 1;
	ck_assert_int_eq(serial_create(&cfg, &s), -EINVAL);
	cfg.output_capacity = 0;
	/* a callback and an fd at once */
	ck_assert_int_eq(pipe2(p, O_NONBLOCK), 0);
	cfg.out = out_cb;
	cfg.use_out_fd = true;
	cfg.out_fd = p[1];
	ck_assert_int_eq(serial_create(&cfg, &s), -EINVAL);
	cfg.out = NULL;
	/* not an open descriptor */
	cfg.out_fd = -1;
	ck_assert_int_eq(serial_create(&cfg, &s), -EBADF);
	close(p[0]);
	close(p[1]);
	cfg.out_fd = p[1];
	ck_assert_int_eq(serial_create(&cfg, &s), -EBADF);
	/* a blocking pipe could block a vCPU: refused */
	ck_assert_int_eq(pipe(p), 0);
	cfg.out_fd = p[1];
	ck_assert_int_eq(serial_create(&cfg, &s), -EINVAL);
	ck_assert_ptr_null(s);
	close(p[0]);
	close(p[1]);
	serial_destroy(NULL);
	ck_assert_uint_eq(serial_reg_read(NULL, 0), 0xff);
	serial_reg_write(NULL, 0, 'x');
	ck_assert_int_eq(serial_input(NULL, "a", 1), -EINVAL);
	ck_assert_int_eq(serial_input(fx.s, NULL, 1), -EINVAL);
	ck_assert_int_eq(serial_input(fx.s, NULL, 0), 0);
	ck_assert_int_eq(serial_input_from_fd(NULL, 0), -EINVAL);
	ck_assert_uint_eq(serial_input_space(NULL), 0);
	ck_assert_int_eq(serial_output_fd(NULL), -EINVAL);
	ck_assert_int_eq(serial_output_flush(NULL), -EINVAL);
	ck_assert_uint_eq(serial_output_pending(NULL), 0);
	ck_assert_uint_eq(serial_output_dropped(NULL), 0);
	ck_assert(!serial_irq_level(NULL));
}
END_TEST

/* NULL and a zeroed config are the defaults: no line, output discarded
 * (not counted), default input buffer, no fd to poll. */
START_TEST(test_serial_null_and_zero_config)
{
	struct serial_config zero = {0};
	struct serial *s[2];

	ck_assert_int_eq(serial_create(NULL, &s[0]), 0);
	ck_assert_int_eq(serial_create(&zero, &s[1]), 0);
	for (unsigned i = 0; i < 2; i++) {
		ck_assert_uint_eq(serial_input_space(s[i]),
				  SERIAL_INPUT_DEFAULT);
		serial_reg_write(s[i], MCR, 0x08);
		serial_reg_write(s[i], IER, 0x02);
		ck_assert(serial_irq_level(s[i])); /* no line: still tracked */
		serial_reg_write(s[i], RBR, 'x');
		ck_assert_uint_eq(serial_output_dropped(s[i]), 0);
		ck_assert_uint_eq(serial_output_pending(s[i]), 0);
		ck_assert_int_eq(serial_output_fd(s[i]), -ENOENT);
		ck_assert_int_eq(serial_output_flush(s[i]), 0);
		serial_destroy(s[i]);
	}
}
END_TEST

START_TEST(test_serial_scratch)
{
	wr(SCR, 0xa5);
	ck_assert_uint_eq(rd(SCR), 0xa5);
	wr(SCR, 0x5a);
	ck_assert_uint_eq(rd(SCR), 0x5a);
}
END_TEST

START_TEST(test_serial_dlab_divisor)
{
	wr(IER, 0x05);
	wr(LCR, 0x83);
	wr(RBR, 0x01); /* DLL */
	wr(IER, 0x02); /* DLM */
	ck_assert_uint_eq(rd(RBR), 0x01);
	ck_assert_uint_eq(rd(IER), 0x02);
	ck_assert_uint_eq(fx.out.len, 0); /* DLL write is not THR */
	wr(LCR, 0x03);
	ck_assert_uint_eq(rd(LCR), 0x03);
	ck_assert_uint_eq(rd(IER), 0x05);
	wr(LCR, 0x80);
	ck_assert_uint_eq(rd(RBR), 0x01);
	ck_assert_uint_eq(rd(IER), 0x02);
}
END_TEST

START_TEST(test_serial_ier_mask)
{
	wr(IER, 0xff);
	ck_assert_uint_eq(rd(IER), 0x0f);
	wr(IER, 0x00);
	ck_assert_uint_eq(rd(IER), 0x00);
}
END_TEST

START_TEST(test_serial_mcr_mask)
{
	wr(MCR, 0xff);
	ck_assert_uint_eq(rd(MCR), 0x1f);
}
END_TEST

START_TEST(test_serial_thr_output_callback)
{
	const char *msg = "hello\n";

	for (const char *p = msg; *p; p++)
		wr(RBR, (uint8_t)*p);
	ck_assert_uint_eq(fx.out.len, 6);
	ck_assert(memcmp(fx.out.buf, msg, 6) == 0);
	ck_assert_uint_eq(rd(LSR) & 0x60, 0x60);
}
END_TEST

START_TEST(test_serial_output_fd)
{
	struct serial_config cfg = {0};
	struct serial *s;
	int p[2];
	char buf[8] = {0};

	ck_assert_int_eq(pipe2(p, O_NONBLOCK), 0);
	cfg.use_out_fd = true;
	cfg.out_fd = p[1];
	ck_assert_int_eq(serial_create(&cfg, &s), 0);
	ck_assert_int_eq(serial_output_fd(s), p[1]);
	serial_reg_write(s, 0, 'o');
	serial_reg_write(s, 0, 'k');
	/* written at once while the pipe has room */
	ck_assert_int_eq(read(p[0], buf, sizeof(buf)), 2);
	ck_assert_str_eq(buf, "ok");
	ck_assert_uint_eq(serial_output_pending(s), 0);
	ck_assert_uint_eq(serial_output_dropped(s), 0);
	ck_assert_int_eq(serial_output_flush(s), 0);
	serial_destroy(s);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* A regular file needs no O_NONBLOCK: it never waits for a reader. */
START_TEST(test_serial_output_regular_file)
{
	struct serial_config cfg = {0};
	struct serial *s;
	FILE *f = tmpfile();
	char buf[8] = {0};

	ck_assert_ptr_nonnull(f);
	cfg.use_out_fd = true;
	cfg.out_fd = fileno(f);
	ck_assert_int_eq(serial_create(&cfg, &s), 0);
	serial_reg_write(s, 0, 'h');
	serial_reg_write(s, 0, 'i');
	ck_assert_int_eq(pread(fileno(f), buf, sizeof(buf), 0), 2);
	ck_assert_str_eq(buf, "hi");
	serial_destroy(s);
	fclose(f);
}
END_TEST

/* Byte i of a transmitted stream: not periodic in 256, so a lost, doubled
 * or reordered run shows. */
static uint8_t pattern(size_t i)
{
	return (uint8_t)(((uint32_t)i * 2654435761u) >> 24);
}

/* Fill a non-blocking pipe (or socket) until it says EAGAIN; returns the
 * bytes it took. */
static size_t fill_fd(int fd)
{
	static const uint8_t filler[4096] = {0};
	size_t total = 0;

	for (;;) {
		ssize_t r = send(fd, filler, sizeof(filler),
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (r < 0 && errno == ENOTSOCK)
			r = write(fd, filler, sizeof(filler));
		if (r < 0) {
			ck_assert(errno == EAGAIN || errno == EWOULDBLOCK);
			return total;
		}
		total += (size_t)r;
	}
}

/* Read and check @n filler (zero) bytes from @fd. */
static void drain_filler(int fd, size_t n)
{
	uint8_t buf[4096];

	while (n > 0) {
		ssize_t r = read(fd, buf, n < sizeof(buf) ? n : sizeof(buf));

		ck_assert_int_gt(r, 0);
		for (ssize_t i = 0; i < r; i++)
			ck_assert_uint_eq(buf[i], 0);
		n -= (size_t)r;
	}
}

/* Read what @fd holds now (non-blocking); check it continues the
 * pattern at *@next. */
static size_t read_pattern(int fd, size_t *next)
{
	uint8_t buf[4096];
	size_t got = 0;
	ssize_t r;

	while ((r = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < r; i++)
			ck_assert_uint_eq(buf[i], pattern((*next)++));
		got += (size_t)r;
	}
	ck_assert(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
	return got;
}

static void count_cb(void *opaque)
{
	(*(unsigned *)opaque)++;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define MIB (1024u * 1024u)

/*
 * Issue 9: a device must not block a vCPU on host I/O.  The output pipe is
 * full and nobody reads it; the guest writes 1 MiB through THR.  Every
 * write returns at once: the first 64 KiB (the default output buffer) are
 * kept, the rest is dropped and counted exactly; output_poll asks the VMM
 * once to poll; after the pipe is drained, serial_output_flush() delivers
 * the kept bytes in order and output flows directly again.
 */
START_TEST(test_hostile_serial_output_full_pipe_never_blocks)
{
	struct serial_config cfg = {0};
	struct io_bus *bus;
	struct serial *s;
	unsigned polls = 0;
	size_t filled, next = 0;
	double t0, dt;
	int p[2];

	ck_assert_int_eq(pipe2(p, O_NONBLOCK), 0);
	filled = fill_fd(p[1]);
	ck_assert_uint_gt(filled, 0);
	cfg.use_out_fd = true;
	cfg.out_fd = p[1];
	cfg.output_poll = count_cb;
	cfg.output_poll_opaque = &polls;
	ck_assert_int_eq(serial_create(&cfg, &s), 0);
	t0 = now_s();
	for (size_t i = 0; i < MIB; i++)
		serial_reg_write(s, RBR, pattern(i));
	dt = now_s() - t0;
	ck_assert_msg(dt < 20.0, "1 MiB of THR writes took %.1f s", dt);
	ck_assert_uint_eq(serial_output_pending(s), SERIAL_OUTPUT_DEFAULT);
	ck_assert_uint_eq(serial_output_dropped(s),
			  MIB - SERIAL_OUTPUT_DEFAULT);
	ck_assert_uint_eq(polls, 1);
	/* the same through the bus, as a vCPU's OUT arrives */
	ck_assert_int_eq(io_bus_create(&bus), 0);
	ck_assert_int_eq(io_bus_register(bus, 0x3f8, SERIAL_NR_REGS,
					 serial_bus_ops(), s),
			 0);
	for (unsigned i = 0; i < 1000; i++) {
		uint8_t b = 'x';

		ck_assert_int_eq(io_bus_write(bus, 0x3f8, &b, 1), 0);
	}
	ck_assert_uint_eq(serial_output_dropped(s),
			  MIB - SERIAL_OUTPUT_DEFAULT + 1000);
	ck_assert_uint_eq(polls, 1);
	ck_assert_int_eq(io_bus_unregister(bus, 0x3f8), 0);
	io_bus_destroy(bus);
	/* still full: a flush writes nothing and keeps everything */
	ck_assert_int_eq(serial_output_flush(s), SERIAL_OUTPUT_DEFAULT);
	ck_assert_uint_eq(polls, 2); /* asked again: keep polling */
	/* the VMM's reader drains the pipe, then flushes until 0 */
	drain_filler(p[0], filled);
	for (unsigned round = 0; next < SERIAL_OUTPUT_DEFAULT; round++) {
		ssize_t left = serial_output_flush(s);

		ck_assert_int_ge(left, 0);
		read_pattern(p[0], &next);
		ck_assert_uint_lt(round, 64);
	}
	ck_assert_uint_eq(next, SERIAL_OUTPUT_DEFAULT);
	ck_assert_int_eq(serial_output_flush(s), 0);
	ck_assert_uint_eq(serial_output_pending(s), 0);
	ck_assert_uint_eq(serial_output_dropped(s),
			  MIB - SERIAL_OUTPUT_DEFAULT + 1000);
	/* unblocked: the next bytes go out directly */
	next = 0;
	for (size_t i = 0; i < 100; i++)
		serial_reg_write(s, RBR, pattern(i));
	ck_assert_uint_eq(read_pattern(p[0], &next), 100);
	ck_assert_uint_eq(serial_output_pending(s), 0);
	serial_destroy(s);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* A buffer larger than the pipe: several drain/flush rounds, flush reports
 * what is left each time, everything kept arrives in order. */
START_TEST(test_serial_output_flush_rounds)
{
	struct serial_config cfg = {0};
	struct serial *s;
	const size_t cap = 300000, total = 400000;
	size_t filled, next = 0;
	ssize_t left;
	unsigned rounds = 0;
	int p[2];

	ck_assert_int_eq(pipe2(p, O_NONBLOCK), 0);
	filled = fill_fd(p[1]);
	cfg.use_out_fd = true;
	cfg.out_fd = p[1];
	cfg.output_capacity = cap;
	ck_assert_int_eq(serial_create(&cfg, &s), 0);
	for (size_t i = 0; i < total; i++)
		serial_reg_write(s, RBR, pattern(i));
	ck_assert_uint_eq(serial_output_pending(s), cap);
	ck_assert_uint_eq(serial_output_dropped(s), total - cap);
	drain_filler(p[0], filled);
	do {
		left = serial_output_flush(s);
		ck_assert_int_ge(left, 0);
		ck_assert_uint_eq((size_t)left, serial_output_pending(s));
		read_pattern(p[0], &next);
		ck_assert_uint_lt(++rounds, 1000);
	} while (left > 0);
	ck_assert_uint_gt(rounds, 1); /* the buffer is larger than the pipe */
	ck_assert_uint_eq(next, cap);
	ck_assert_uint_eq(serial_output_dropped(s), total - cap);
	serial_destroy(s);
	close(p[0]);
	close(p[1]);
}
END_TEST

/* A blocking socket is accepted: it is written with MSG_DONTWAIT, so a full
 * socket does not block either; its writes raise no SIGPIPE. */
START_TEST(test_serial_output_socket)
{
	struct serial_config cfg = {0};
	struct serial *s;
	size_t filled, next = 0;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	filled = fill_fd(sv[1]);
	cfg.use_out_fd = true;
	cfg.out_fd = sv[1];
	cfg.output_capacity = 1000;
	ck_assert_int_eq(serial_create(&cfg, &s), 0);
	for (size_t i = 0; i < 5000; i++)
		serial_reg_write(s, RBR, pattern(i));
	ck_assert_uint_eq(serial_output_pending(s), 1000);
	ck_assert_uint_eq(serial_output_dropped(s), 4000);
	ck_assert_int_eq(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	drain_filler(sv[0], filled);
	ck_assert_int_eq(serial_output_flush(s), 0);
	ck_assert_uint_eq(read_pattern(sv[0], &next), 1000);
	/* peer gone: EPIPE without SIGPIPE; what was buffered is dropped */
	close(sv[0]);
	serial_reg_write(s, RBR, 'x');
	ck_assert_uint_eq(serial_output_dropped(s), 4001);
	serial_destroy(s);
	close(sv[1]);
}
END_TEST

/*
 * Two vCPU threads transmit while a VMM thread reads the pipe and flushes
 * when asked (output_poll) and on a short timer.  Bounded run time; every
 * byte either arrives or is counted as dropped, and with nothing dropped
 * each writer's bytes arrive in its order.
 */
struct race {
	struct serial *s;
	int rfd;
	volatile int writers_done;
	size_t got[2];
	unsigned next_seq[2];
	bool in_order;
	int poll_ev; /* eventfd-like pipe: output_poll wakes the reader */
	int poll_wr;
};

static void race_poll(void *opaque)
{
	struct race *r = opaque;
	char c = 1;

	(void)!write(r->poll_wr, &c, 1); /* non-blocking pipe: may be full */
}

#define RACE_BYTES 100000u

static void *race_writer(void *arg)
{
	struct race *r = arg;
	static unsigned ids;
	unsigned id = __atomic_fetch_add(&ids, 1, __ATOMIC_RELAXED) & 1;

	for (unsigned i = 0; i < RACE_BYTES; i++)
		serial_reg_write(r->s, RBR, (uint8_t)((id << 7) | (i & 0x7f)));
	return NULL;
}

static void race_consume(struct race *r)
{
	uint8_t buf[4096];
	ssize_t n;

	while ((n = read(r->rfd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			unsigned id = buf[i] >> 7;

			if ((buf[i] & 0x7f) != (r->next_seq[id] & 0x7f))
				r->in_order = false;
			r->next_seq[id]++;
			r->got[id]++;
		}
	}
}

START_TEST(test_serial_output_concurrent_writers)
{
	struct serial_config cfg = {0};
	struct race r = {0};
	pthread_t th[2];
	int p[2], ev[2];
	double t0 = now_s();
	struct pollfd pf[2];

	ck_assert_int_eq(pipe2(p, O_NONBLOCK), 0);
	ck_assert_int_eq(pipe2(ev, O_NONBLOCK), 0);
	r.rfd = p[0];
	r.poll_ev = ev[0];
	r.poll_wr = ev[1];
	r.in_order = true;
	cfg.use_out_fd = true;
	cfg.out_fd = p[1];
	cfg.output_capacity = 4096;
	cfg.output_poll = race_poll;
	cfg.output_poll_opaque = &r;
	ck_assert_int_eq(serial_create(&cfg, &r.s), 0);
	for (unsigned i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, race_writer, &r),
				 0);
	/* the VMM: read the pipe, flush when asked or every 1 ms */
	for (unsigned spins = 0;; spins++) {
		char c[64];

		pf[0] = (struct pollfd){.fd = p[0], .events = POLLIN};
		pf[1] = (struct pollfd){.fd = ev[0], .events = POLLIN};
		(void)poll(pf, 2, 1);
		while (read(ev[0], c, sizeof(c)) > 0)
			;
		race_consume(&r);
		(void)serial_output_flush(r.s);
		race_consume(&r);
		if (r.got[0] + r.got[1] + serial_output_dropped(r.s) ==
		    2 * RACE_BYTES)
			break;
		ck_assert_msg(now_s() - t0 < 60.0, "stuck: got %zu+%zu",
			      r.got[0], r.got[1]);
	}
	for (unsigned i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	ck_assert_uint_eq(serial_output_pending(r.s), 0);
	ck_assert_uint_eq(r.got[0] + r.got[1] + serial_output_dropped(r.s),
			  2 * RACE_BYTES);
	if (serial_output_dropped(r.s) == 0)
		ck_assert(r.in_order);
	serial_destroy(r.s);
	close(p[0]);
	close(p[1]);
	close(ev[0]);
	close(ev[1]);
}
END_TEST

START_TEST(test_serial_rx_basic)
{
	ck_assert_int_eq(serial_input(fx.s, "abc", 3), 3);
	ck_assert_uint_eq(rd(LSR) & 0x01, 0x01);
	ck_assert_uint_eq(rd(RBR), 'a');
	ck_assert_uint_eq(rd(RBR), 'b');
	ck_assert_uint_eq(rd(RBR), 'c');
	ck_assert_uint_eq(rd(LSR) & 0x01, 0);
	ck_assert_uint_eq(serial_input_space(fx.s), SERIAL_INPUT_DEFAULT);
}
END_TEST

START_TEST(test_serial_rx_fifo_and_host_buffer_order)
{
	uint8_t in[300];

	for (unsigned i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7);
	wr(FCR, 0x07);
	ck_assert_int_eq(serial_input(fx.s, in, sizeof(in)), sizeof(in));
	ck_assert_uint_eq(serial_input_space(fx.s),
			  SERIAL_INPUT_DEFAULT - (sizeof(in) - 16));
	for (unsigned i = 0; i < sizeof(in); i++) {
		ck_assert_uint_eq(rd(LSR) & 1, 1);
		ck_assert_uint_eq(rd(RBR), in[i]);
	}
	ck_assert_uint_eq(rd(LSR) & 1, 0);
}
END_TEST

START_TEST(test_hostile_serial_input_bounded)
{
	static uint8_t big[1 << 20];
	ssize_t total = 0, n;

	teardown();
	setup_cap(64);
	wr(FCR, 0x01);
	/* the host pushes a megabyte: only the buffer's room is accepted */
	n = serial_input(fx.s, big, sizeof(big));
	ck_assert_int_eq(n, 64);
	total += n;
	n = serial_input(fx.s, big, sizeof(big));
	ck_assert_int_eq(n, 16); /* what moved into the hardware FIFO */
	total += n;
	ck_assert_int_eq(serial_input(fx.s, big, sizeof(big)), 0);
	ck_assert_uint_eq(serial_input_space(fx.s), 0);
	ck_assert_int_eq(total, 80);
	/* the guest drains exactly what was accepted */
	for (ssize_t i = 0; i < total; i++)
		ck_assert_uint_eq(rd(LSR) & 1, 1);
	for (ssize_t i = 0; i < total; i++)
		(void)rd(RBR);
	ck_assert_uint_eq(rd(LSR) & 1, 0);
	ck_assert_uint_eq(serial_input_space(fx.s), 64);
}
END_TEST

START_TEST(test_serial_fifo_disabled_one_byte)
{
	ck_assert_int_eq(serial_input(fx.s, "xyz", 3), 3);
	/* FIFO off: one byte in the holding register, two in the host buffer */
	ck_assert_uint_eq(serial_input_space(fx.s), SERIAL_INPUT_DEFAULT - 2);
	ck_assert_uint_eq(rd(RBR), 'x');
	ck_assert_uint_eq(serial_input_space(fx.s), SERIAL_INPUT_DEFAULT - 1);
	ck_assert_uint_eq(rd(RBR), 'y');
	ck_assert_uint_eq(rd(RBR), 'z');
	ck_assert_uint_eq(rd(LSR) & 1, 0);
	ck_assert_uint_eq(rd(RBR), 0); /* empty read */
}
END_TEST

START_TEST(test_serial_fcr_clear_rx)
{
	wr(FCR, 0x01);
	ck_assert_int_eq(serial_input(fx.s, "0123456789", 10), 10);
	wr(FCR, 0x03); /* clear RX FIFO */
	ck_assert_uint_eq(rd(LSR) & 1, 0);
	ck_assert_uint_eq(serial_input_space(fx.s), SERIAL_INPUT_DEFAULT);
}
END_TEST

START_TEST(test_serial_iir_fifo_bits)
{
	ck_assert_uint_eq(rd(IIR) & 0xc0, 0);
	wr(FCR, 0x01);
	ck_assert_uint_eq(rd(IIR), 0xc1);
	wr(FCR, 0x00);
	ck_assert_uint_eq(rd(IIR), 0x01);
}
END_TEST

START_TEST(test_serial_rda_irq)
{
	wr(MCR, 0x08);
	wr(IER, 0x01);
	ck_assert(!fx.rec.level);
	ck_assert_int_eq(serial_input(fx.s, "k", 1), 1);
	ck_assert(fx.rec.level);
	ck_assert(serial_irq_level(fx.s));
	ck_assert_uint_eq(rd(IIR), 0x04);
	ck_assert_uint_eq(rd(RBR), 'k');
	ck_assert(!fx.rec.level);
	ck_assert_uint_eq(rd(IIR), 0x01);
	ck_assert_uint_eq(fx.rec.asserts, 1);
	ck_assert_uint_eq(fx.rec.deasserts, 1);
}
END_TEST

START_TEST(test_serial_irq_gated_by_out2)
{
	wr(IER, 0x01);
	ck_assert_int_eq(serial_input(fx.s, "k", 1), 1);
	ck_assert_uint_eq(rd(IIR), 0x04); /* pending ... */
	ck_assert(!fx.rec.level);	  /* ... but OUT2 is off */
	wr(MCR, 0x08);
	ck_assert(fx.rec.level);
	wr(MCR, 0x00);
	ck_assert(!fx.rec.level);
}
END_TEST

START_TEST(test_serial_trigger_level)
{
	wr(MCR, 0x08);
	wr(IER, 0x01);
	wr(FCR, 0xc1); /* trigger at 14 */
	ck_assert_int_eq(serial_input(fx.s, "12345", 5), 5);
	ck_assert_uint_eq(rd(IIR), 0xcc); /* character timeout */
	ck_assert_int_eq(serial_input(fx.s, "123456789", 9), 9);
	ck_assert_uint_eq(rd(IIR), 0xc4); /* data available */
	ck_assert(fx.rec.level);
}
END_TEST

START_TEST(test_serial_thre_irq)
{
	wr(MCR, 0x08);
	wr(IER, 0x02);
	ck_assert(fx.rec.level);
	ck_assert_uint_eq(rd(IIR), 0x02);
	/* reading IIR that reported THRE clears it */
	ck_assert(!fx.rec.level);
	ck_assert_uint_eq(rd(IIR), 0x01);
	wr(RBR, 'z');
	ck_assert(fx.rec.level);
	ck_assert_uint_eq(rd(IIR), 0x02);
	ck_assert_uint_eq(fx.rec.asserts, 2);
}
END_TEST

START_TEST(test_serial_thre_reraised_on_etbei_rising)
{
	wr(MCR, 0x08);
	wr(IER, 0x02);
	ck_assert_uint_eq(rd(IIR), 0x02);
	ck_assert(!fx.rec.level);
	wr(IER, 0x02); /* no 0->1 edge: nothing new */
	ck_assert(!fx.rec.level);
	wr(IER, 0x00);
	wr(IER, 0x02); /* 0->1 with THR empty: THRE again */
	ck_assert(fx.rec.level);
	ck_assert_uint_eq(rd(IIR), 0x02);
}
END_TEST

START_TEST(test_serial_ier_reenable_reasserts)
{
	/* Linux's console write masks IER, polls LSR, writes, restores IER */
	wr(MCR, 0x08);
	wr(IER, 0x01);
	ck_assert_int_eq(serial_input(fx.s, "q", 1), 1);
	ck_assert(fx.rec.level);
	wr(IER, 0x00);
	ck_assert(!fx.rec.level);
	for (const char *p = "console"; *p; p++) {
		ck_assert_uint_eq(rd(LSR) & 0x20, 0x20);
		wr(RBR, (uint8_t)*p);
	}
	wr(IER, 0x01);
	ck_assert(fx.rec.level); /* the unread byte interrupts again */
	ck_assert_uint_eq(rd(IIR), 0x04);
	ck_assert_uint_eq(rd(RBR), 'q');
	ck_assert(!fx.rec.level);
	ck_assert_uint_eq(fx.out.len, 7);
}
END_TEST

START_TEST(test_serial_iir_priority)
{
	wr(FCR, 0x01);
	wr(MCR, 0x18); /* loopback, OUT2 */
	for (unsigned i = 0; i < 17; i++)
		wr(RBR, (uint8_t)i); /* the 17th overruns */
	wr(MCR, 0x19);		     /* DTR -> DSR change: modem status */
	wr(IER, 0x0f);
	ck_assert(fx.rec.level);
	ck_assert_uint_eq(rd(IIR) & 0x0f, 0x06); /* line status */
	ck_assert_uint_eq(rd(LSR) & 0x03, 0x03); /* OE | DR, clears OE */
	ck_assert_uint_eq(rd(IIR) & 0x0f, 0x04); /* data (16 >= trigger 1) */
	for (unsigned i = 0; i < 16; i++)
		ck_assert_uint_eq(rd(RBR), i);
	ck_assert_uint_eq(rd(IIR) & 0x0f, 0x02); /* THR empty, now cleared */
	ck_assert_uint_eq(rd(IIR) & 0x0f, 0x00); /* modem status */
	/* DCTS and DDSR (entering loopback, then DTR), cleared by the read */
	ck_assert_uint_eq(rd(MSR) & 0x0f, 0x03);
	ck_assert_uint_eq(rd(IIR) & 0x0f, 0x01);
	ck_assert(!fx.rec.level);
}
END_TEST

START_TEST(test_serial_loopback_data)
{
	wr(MCR, 0x10);
	wr(RBR, 'L');
	ck_assert_uint_eq(fx.out.len, 0);
	ck_assert_uint_eq(rd(LSR) & 1, 1);
	ck_assert_uint_eq(rd(RBR), 'L');
	wr(MCR, 0x00);
	wr(RBR, 'N');
	ck_assert_uint_eq(fx.out.len, 1);
	ck_assert_uint_eq(rd(LSR) & 1, 0);
}
END_TEST

START_TEST(test_serial_loopback_msr)
{
	/* Linux 8250 autoconfig: MCR = LOOP | OUT2 | RTS -> MSR high = 0x90 */
	wr(MCR, 0x1a);
	ck_assert_uint_eq(rd(MSR) & 0xf0, 0x90);
	wr(MCR, 0x15); /* LOOP | OUT1 | DTR -> RI | DSR */
	ck_assert_uint_eq(rd(MSR) & 0xf0, 0x60);
	wr(MCR, 0x10); /* RI falls: TERI */
	ck_assert_uint_eq(rd(MSR), 0x04 | 0x02);
	wr(MCR, 0x00);
	ck_assert_uint_eq(rd(MSR) & 0xf0, 0xb0);
}
END_TEST

START_TEST(test_serial_loopback_overrun)
{
	wr(FCR, 0x01);
	wr(MCR, 0x10);
	for (unsigned i = 0; i < 20; i++)
		wr(RBR, 'a');
	ck_assert_uint_eq(rd(LSR) & 0x02, 0x02);
	ck_assert_uint_eq(rd(LSR) & 0x02, 0x00); /* cleared by the read */
	for (unsigned i = 0; i < 16; i++)
		ck_assert_uint_eq(rd(RBR), 'a');
	ck_assert_uint_eq(rd(LSR) & 1, 0);
}
END_TEST

START_TEST(test_serial_loopback_host_input_waits)
{
	wr(MCR, 0x10);
	ck_assert_int_eq(serial_input(fx.s, "h", 1), 1);
	ck_assert_uint_eq(rd(LSR) & 1, 0);
	wr(MCR, 0x00);
	ck_assert_uint_eq(rd(LSR) & 1, 1);
	ck_assert_uint_eq(rd(RBR), 'h');
}
END_TEST

START_TEST(test_serial_msr_interrupt)
{
	wr(MCR, 0x18);
	(void)rd(MSR); /* clear deltas from entering loopback */
	wr(IER, 0x08);
	ck_assert(!fx.rec.level);
	wr(MCR, 0x1a); /* RTS -> CTS */
	ck_assert(fx.rec.level);
	ck_assert_uint_eq(rd(IIR), 0x00);
	ck_assert_uint_eq(rd(MSR), 0x90 | 0x01);
	ck_assert(!fx.rec.level);
}
END_TEST

START_TEST(test_serial_lsr_msr_read_only)
{
	wr(LSR, 0x00);
	ck_assert_uint_eq(rd(LSR), 0x60);
	wr(MSR, 0x00);
	ck_assert_uint_eq(rd(MSR), 0xb0);
}
END_TEST

START_TEST(test_serial_bus_dispatch)
{
	struct io_bus *bus;
	uint16_t v16;
	uint8_t v;

	ck_assert_int_eq(io_bus_create(&bus), 0);
	ck_assert_int_eq(io_bus_register(bus, 0x3f8, SERIAL_NR_REGS,
					 serial_bus_ops(), fx.s),
			 0);
	v = 'B';
	ck_assert_int_eq(io_bus_write(bus, 0x3f8, &v, 1), 0);
	ck_assert_uint_eq(fx.out.len, 1);
	ck_assert_uint_eq(fx.out.buf[0], 'B');
	ck_assert_int_eq(io_bus_read(bus, 0x3fd, &v, 1), 0);
	ck_assert_uint_eq(v, 0x60);
	/* a 16-bit read of LSR/MSR reads both registers */
	ck_assert_int_eq(io_bus_read(bus, 0x3fd, &v16, 2), 0);
	ck_assert_uint_eq(v16, 0xb060);
	ck_assert_int_eq(io_bus_read(bus, 0x3ff, &v16, 2), -ERANGE);
	ck_assert_int_eq(io_bus_unregister(bus, 0x3f8), 0);
	io_bus_destroy(bus);
}
END_TEST

START_TEST(test_serial_linux_autoconfig)
{
	/* the probe steps of drivers/tty/serial/8250/8250_port.c */
	uint8_t save_lcr = rd(LCR);

	wr(LCR, 0); /* IER test */
	wr(IER, 0);
	ck_assert_uint_eq(rd(IER) & 0x0f, 0);
	wr(IER, 0x0f);
	ck_assert_uint_eq(rd(IER) & 0x0f, 0x0f);
	wr(IER, 0);
	wr(MCR, 0x1a); /* loopback test */
	ck_assert_uint_eq(rd(MSR) & 0xf0, 0x90);
	wr(MCR, 0);
	wr(LCR, 0xbf); /* EFR probe: no EFR on a 16550A */
	ck_assert_uint_ne(rd(IIR), 0);
	wr(LCR, 0);
	wr(FCR, 0x01); /* FIFO test */
	ck_assert_uint_eq(rd(IIR) >> 6, 3);
	wr(LCR, 0x80); /* 16750 test: 64-byte FIFO bit must not stick */
	wr(FCR, 0x21);
	ck_assert_uint_eq(rd(IIR) & 0x20, 0);
	wr(LCR, save_lcr);
	wr(FCR, 0x00);
	ck_assert_uint_eq(rd(IIR), 0x01);
}
END_TEST

/*
 * serial8250_do_startup() then serial8250_console_write(), as Linux runs
 * them on ttyS0: the UART_BUG_THRE test (THRI set twice around an IER
 * clear must raise THRE both times), the UART_BUG_TXEN test, then a console
 * write with IER masked while the tty has TX and RX interrupts enabled:
 * restoring IER must raise the line again (an edge) for the pending THRE
 * and for input that arrived while masked.
 */
START_TEST(test_serial_linux_startup_and_console_write)
{
	uint8_t iir1, iir, lsr, ier;
	unsigned edges;

	/* autoconfig tail: National SuperIO and XScale UUE probes */
	wr(LCR, 0);
	ck_assert_uint_eq(rd(MCR) & 0x10, 0);
	wr(LCR, 0xe0);
	ck_assert_uint_eq(rd(2) & 0x10, 0); /* "EXCR1" reads IIR */
	wr(LCR, 0);
	wr(IER, 0x40);
	ck_assert_uint_eq(rd(IER) & 0x40, 0); /* no UUE bit */
	wr(IER, 0);
	/* serial8250_clear_fifos, then clear the interrupt registers */
	wr(FCR, 0x01);
	wr(FCR, 0x07);
	wr(FCR, 0);
	(void)rd(LSR);
	(void)rd(RBR);
	(void)rd(IIR);
	(void)rd(MSR);
	ck_assert_uint_ne(rd(LSR), 0xff);
	/* UART_BUG_THRE test (port has an irq) */
	wr(IER, 0x02);
	iir1 = rd(IIR);
	wr(IER, 0);
	wr(IER, 0x02);
	iir = rd(IIR);
	wr(IER, 0);
	ck_assert_uint_eq(iir1 & 0x01, 0);
	ck_assert_uint_eq(iir & 0x01, 0);
	/* init: 8N1, DTR|RTS|OUT2 */
	wr(LCR, 0x03);
	wr(MCR, 0x0b);
	/* UART_BUG_TXEN test */
	edges = fx.rec.asserts;
	wr(IER, 0x02);
	lsr = rd(LSR);
	iir = rd(IIR);
	wr(IER, 0);
	ck_assert(!((lsr & 0x40) && (iir & 0x01)));
	ck_assert_uint_eq(fx.rec.asserts, edges + 1);
	ck_assert(!fx.rec.level);
	/* set_termios: FIFO with trigger 8; tty open: RX + TX interrupts */
	wr(FCR, 0x81);
	wr(IER, 0x07);
	ck_assert(fx.rec.level);
	ck_assert_uint_eq(rd(IIR) & 0x0f, 0x02); /* THRE, handled */
	ck_assert(!fx.rec.level);
	/* console write: save IER, mask, poll LSR, write, restore */
	ier = rd(IER);
	wr(IER, 0);
	ck_assert_int_eq(serial_input(fx.s, "k", 1), 1); /* while masked */
	ck_assert(!fx.rec.level);
	for (const char *m = "panic\n"; *m; m++) {
		ck_assert_uint_eq(rd(LSR) & 0x60, 0x60);
		wr(RBR, (uint8_t)*m);
	}
	ck_assert(!fx.rec.level);
	edges = fx.rec.asserts;
	wr(IER, ier);
	ck_assert(fx.rec.level);
	ck_assert_uint_eq(fx.rec.asserts, edges + 1);
	ck_assert_uint_eq(rd(IIR) & 0x0f, 0x0c); /* the byte, as timeout */
	ck_assert_uint_eq(rd(RBR), 'k');
	ck_assert_uint_eq(rd(IIR) & 0x0f, 0x02); /* then THRE */
	ck_assert_uint_eq(rd(IIR) & 0x01, 0x01);
	ck_assert(!fx.rec.level);
	ck_assert_uint_ge(fx.out.len, 6);
	ck_assert_mem_eq(fx.out.buf + fx.out.len - 6, "panic\n", 6);
}
END_TEST

START_TEST(test_serial_input_from_fd)
{
	int p[2];

	ck_assert_int_eq(pipe2(p, O_NONBLOCK), 0);
	ck_assert_int_eq(serial_input_from_fd(fx.s, p[0]), -EAGAIN);
	ck_assert_int_eq(write(p[1], "fd!", 3), 3);
	ck_assert_int_eq(serial_input_from_fd(fx.s, p[0]), 3);
	ck_assert_uint_eq(rd(RBR), 'f');
	ck_assert_uint_eq(rd(RBR), 'd');
	ck_assert_uint_eq(rd(RBR), '!');
	close(p[1]);
	ck_assert_int_eq(serial_input_from_fd(fx.s, p[0]), -EPIPE);
	ck_assert_int_eq(serial_input_from_fd(fx.s, -1), -EINVAL);
	close(p[0]);
}
END_TEST

START_TEST(test_serial_input_from_fd_full_buffer)
{
	int p[2];
	uint8_t junk[64] = {0};

	teardown();
	setup_cap(8);
	ck_assert_int_eq(pipe2(p, O_NONBLOCK), 0);
	ck_assert_int_eq(write(p[1], junk, sizeof(junk)), sizeof(junk));
	ck_assert_int_eq(serial_input_from_fd(fx.s, p[0]), 8);
	ck_assert_int_eq(serial_input_from_fd(fx.s, p[0]), 1); /* RBR room */
	ck_assert_int_eq(serial_input_from_fd(fx.s, p[0]), 0); /* full */
	close(p[0]);
	close(p[1]);
}
END_TEST

static void space_cb(void *opaque)
{
	(*(unsigned *)opaque)++;
}

START_TEST(test_serial_input_space_callback)
{
	struct serial_config cfg = {0};
	struct serial *s;
	unsigned calls = 0;

	cfg.input_capacity = 4;
	cfg.input_space = space_cb;
	cfg.input_space_opaque = &calls;
	ck_assert_int_eq(serial_create(&cfg, &s), 0);
	/* 1 byte into the holding register, 4 in the buffer: full */
	ck_assert_int_eq(serial_input(s, "abcdef", 6), 4);
	ck_assert_int_eq(serial_input(s, "ef", 2), 1);
	ck_assert_int_eq(serial_input(s, "f", 1), 0);
	ck_assert_uint_eq(calls, 0);
	ck_assert_uint_eq(serial_reg_read(s, 0), 'a');
	ck_assert_uint_eq(calls, 1); /* full -> room */
	ck_assert_uint_eq(serial_reg_read(s, 0), 'b');
	ck_assert_uint_eq(calls, 1); /* was not full */
	serial_destroy(s);
}
END_TEST

/* An output callback that re-enters the device, as a VMM echoing a local
 * console or a terminal emulator answering a query does: it queues input,
 * reads LSR and, once, transmits a byte itself.  With the callback called
 * under the device mutex this deadlocked (the test timed out). */
struct reenter {
	struct serial *s;
	struct outbuf log;
	unsigned nested;
	size_t space_seen;
};

static void reenter_out(void *opaque, const uint8_t *b, size_t n)
{
	struct reenter *r = opaque;

	out_cb(&r->log, b, n);
	ck_assert_int_eq(serial_input(r->s, b, n), (ssize_t)n); /* echo */
	ck_assert_uint_eq(serial_reg_read(r->s, 5) & 0x60, 0x60);
	if (r->nested++ == 0)
		serial_reg_write(r->s, 0, '!'); /* nested delivery */
}

START_TEST(test_serial_output_callback_reenters)
{
	struct serial_config cfg = {0};
	struct reenter r = {0};
	struct io_bus *bus;
	uint8_t b = 'h';

	cfg.out = reenter_out;
	cfg.out_opaque = &r;
	ck_assert_int_eq(serial_create(&cfg, &r.s), 0);
	ck_assert_int_eq(io_bus_create(&bus), 0);
	ck_assert_int_eq(io_bus_register(bus, 0x3f8, SERIAL_NR_REGS,
					 serial_bus_ops(), r.s),
			 0);
	serial_reg_write(r.s, 2, 0x07); /* FIFOs on */
	ck_assert_int_eq(io_bus_write(bus, 0x3f8, &b, 1), 0);
	ck_assert_uint_eq(r.log.len, 2);
	ck_assert_mem_eq(r.log.buf, "h!", 2);
	/* the echo came back in order */
	ck_assert_int_eq(io_bus_read(bus, 0x3f8, &b, 1), 0);
	ck_assert_uint_eq(b, 'h');
	ck_assert_uint_eq(serial_reg_read(r.s, 0), '!');
	ck_assert_uint_eq(serial_reg_read(r.s, 5) & 0x01, 0);
	io_bus_destroy(bus);
	serial_destroy(r.s);
}
END_TEST

/* input_space re-entering the device (it refills from its fd at once). */
static void space_refill(void *opaque)
{
	struct reenter *r = opaque;

	r->space_seen = serial_input_space(r->s);
	ck_assert_int_eq(serial_input(r->s, "z", 1), 1);
}

START_TEST(test_serial_input_space_callback_reenters)
{
	struct serial_config cfg = {0};
	struct reenter r = {0};

	cfg.input_capacity = 2;
	cfg.input_space = space_refill;
	cfg.input_space_opaque = &r;
	ck_assert_int_eq(serial_create(&cfg, &r.s), 0);
	ck_assert_int_eq(serial_input(r.s, "ab", 2), 2);
	ck_assert_int_eq(serial_input(r.s, "cd", 2), 1); /* 1 + 2: full */
	ck_assert_uint_eq(serial_reg_read(r.s, 0), 'a');
	ck_assert_uint_eq(r.space_seen, 1);
	ck_assert_uint_eq(serial_reg_read(r.s, 0), 'b');
	ck_assert_uint_eq(serial_reg_read(r.s, 0), 'c');
	ck_assert_uint_eq(serial_reg_read(r.s, 0), 'z');
	serial_destroy(r.s);
}
END_TEST

/* A failing output fd: every byte buffered when the write fails is counted
 * and the flush reports the error. */
START_TEST(test_serial_output_fd_failure_counted)
{
	struct serial_config cfg = {0};
	struct serial *s;
	int p[2];
	size_t filled;

	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(pipe2(p, O_NONBLOCK), 0);
	cfg.use_out_fd = true;
	cfg.out_fd = p[1];
	ck_assert_int_eq(serial_create(&cfg, &s), 0);
	filled = fill_fd(p[1]);
	ck_assert_uint_gt(filled, 0);
	serial_reg_write(s, 0, 'a');
	serial_reg_write(s, 0, 'b');
	ck_assert_uint_eq(serial_output_pending(s), 2);
	ck_assert_int_eq(close(p[0]), 0);
	ck_assert_int_eq(serial_output_flush(s), -EPIPE);
	ck_assert_uint_eq(serial_output_dropped(s), 2);
	ck_assert_uint_eq(serial_output_pending(s), 0);
	/* the next bytes try again and fail again, counted one by one */
	serial_reg_write(s, 0, 'x');
	serial_reg_write(s, 0, 'y');
	ck_assert_uint_eq(serial_output_dropped(s), 4);
	serial_destroy(s);
	close(p[1]);
}
END_TEST

START_TEST(test_serial_reset)
{
	wr(MCR, 0x08);
	wr(IER, 0x02);
	ck_assert(fx.rec.level);
	wr(SCR, 0x11);
	serial_reset(fx.s);
	ck_assert(!fx.rec.level);
	ck_assert_uint_eq(rd(SCR), 0);
	ck_assert_uint_eq(rd(IER), 0);
	ck_assert_uint_eq(rd(MCR), 0);
	serial_reset(NULL);
}
END_TEST

static void *feeder(void *arg)
{
	struct serial *s = arg;
	uint8_t b = 0;
	unsigned sent = 0;

	while (sent < 20000) {
		ssize_t n = serial_input(s, &b, 1);

		if (n == 1) {
			b++;
			sent++;
		} else {
			sched_yield();
		}
	}
	return NULL;
}

START_TEST(test_serial_concurrent_input)
{
	pthread_t th;
	uint8_t expect = 0;
	unsigned got = 0, spins = 0;

	teardown();
	setup_cap(32);
	wr(FCR, 0x01);
	ck_assert_int_eq(pthread_create(&th, NULL, feeder, fx.s), 0);
	while (got < 20000 && spins < 10000000u) {
		if (rd(LSR) & 1) {
			ck_assert_uint_eq(rd(RBR), expect);
			expect++;
			got++;
		} else {
			spins++;
			sched_yield(); /* let the feeder run on a busy machine */
		}
	}
	pthread_join(th, NULL);
	ck_assert_uint_eq(got, 20000);
}
END_TEST

START_TEST(test_hostile_serial_register_storm)
{
	uint32_t x = 0x12345678;

	ck_assert_int_eq(serial_input(fx.s, "abcdefgh", 8), 8);
	for (unsigned i = 0; i < 200000; i++) {
		unsigned reg;
		uint8_t v;

		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		reg = x % 10; /* includes out-of-range 8, 9 */
		v = (uint8_t)(x >> 8);
		if (x & 0x80000000u)
			serial_reg_write(fx.s, reg, v);
		else
			(void)serial_reg_read(fx.s, reg);
		if (i % 1000 == 0)
			(void)serial_input(fx.s, "zz", 2);
	}
	/* invariants: still a 16550A, IER masked, output bounded */
	wr(LCR, 0x03);
	ck_assert_uint_le(rd(IER), 0x0f);
	ck_assert_uint_le(rd(MCR), 0x1f);
	ck_assert_uint_le(serial_input_space(fx.s), SERIAL_INPUT_DEFAULT);
	ck_assert_uint_eq(rd(LSR) & 0x60, 0x60);
}
END_TEST

/*
 * Interactive use as Linux's ttyS0 with interrupts, end to end: the line
 * feeds an edge-triggered interrupt controller (rising edges signal an
 * event notifier), a "guest" thread runs an ISR shaped like
 * serial8250_interrupt()/serial8250_handle_irq() (loop on IIR until no
 * interrupt, read while LSR.DR, fill the FIFO on THRE, stop TX by clearing
 * IER.THRI), a host thread types input concurrently.  Every byte must arrive
 * in order both ways and no interrupt may be lost (each wait is bounded).
 */
struct interactive {
	struct serial *s;
	struct event_notifier *edge;
	bool level;
	unsigned nin;
	struct outbuf out;
};

static int edge_set(void *opaque, bool level)
{
	struct interactive *ia = opaque;

	if (level && !ia->level)
		event_notifier_signal(ia->edge);
	ia->level = level;
	return 0;
}

static void *typist(void *arg)
{
	struct interactive *ia = arg;
	unsigned sent = 0;

	while (sent < ia->nin) {
		uint8_t b[7];
		ssize_t n;
		unsigned k = 0;

		for (; k < sizeof(b) && sent + k < ia->nin; k++)
			b[k] = (uint8_t)((sent + k) * 13);
		n = serial_input(ia->s, b, k);
		if (n > 0)
			sent += (unsigned)n;
		else
			sched_yield();
	}
	return NULL;
}

START_TEST(test_serial_interactive_isr)
{
	struct interactive ia = {0};
	struct serial_config cfg = {0};
	pthread_t th;
	unsigned got = 0, tx = 0, lost_waits = 0;
	const unsigned ntx = 3000;

	ia.nin = 20000;
	ck_assert_int_eq(event_notifier_create(0, &ia.edge), 0);
	cfg.irq.set = edge_set;
	cfg.irq.opaque = &ia;
	cfg.out = out_cb;
	cfg.out_opaque = &ia.out;
	cfg.input_capacity = 64;
	ck_assert_int_eq(serial_create(&cfg, &ia.s), 0);
	/* serial8250_startup: FIFO on, OUT2, receive interrupts, then TX */
	serial_reg_write(ia.s, FCR, 0x87); /* FIFO, clear, trigger 8 */
	serial_reg_write(ia.s, LCR, 0x03);
	serial_reg_write(ia.s, MCR, 0x0b);
	serial_reg_write(ia.s, IER, 0x05);
	ck_assert_int_eq(pthread_create(&th, NULL, typist, &ia), 0);
	serial_reg_write(ia.s, IER, 0x07); /* start_tx */
	while (got < ia.nin || tx < ntx) {
		unsigned pass;

		if (event_notifier_wait(ia.edge, 2000) <= 0) {
			/* no edge for 2 s: only legitimate if nothing is
			 * pending (the typist has not typed yet) */
			lost_waits++;
			ck_assert_uint_eq(serial_reg_read(ia.s, IIR) & 1, 1);
			ck_assert_uint_lt(lost_waits, 5);
			continue;
		}
		for (pass = 0; pass < 512; pass++) {
			uint8_t iir = serial_reg_read(ia.s, IIR);

			if (iir & 1)
				break;
			if ((iir & 0x0e) == 0x04 || (iir & 0x0e) == 0x0c) {
				for (unsigned n = 0;
				     n < 256 &&
				     (serial_reg_read(ia.s, LSR) & 1);
				     n++) {
					ck_assert_uint_eq(serial_reg_read(ia.s,
									  RBR),
							  (uint8_t)(got * 13));
					got++;
				}
			} else if ((iir & 0x0e) == 0x02) {
				for (unsigned n = 0; n < 16 && tx < ntx; n++) {
					serial_reg_write(ia.s, RBR,
							 (uint8_t)(tx * 7));
					tx++;
				}
				if (tx == ntx) /* __stop_tx */
					serial_reg_write(ia.s, IER, 0x05);
			}
		}
		ck_assert_uint_lt(pass, 512);
	}
	pthread_join(th, NULL);
	ck_assert_uint_eq(got, ia.nin);
	ck_assert_uint_eq(ia.out.len, ntx < sizeof(ia.out.buf) ? ntx : 4096);
	for (unsigned i = 0; i < ia.out.len; i++)
		ck_assert_uint_eq(ia.out.buf[i], (uint8_t)(i * 7));
	ck_assert(!ia.level);
	serial_destroy(ia.s);
	event_notifier_destroy(ia.edge);
}
END_TEST

static Suite *serial_suite(void)
{
	Suite *s = suite_create("serial");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_serial_reset_state);
	tcase_add_test(tc, test_serial_create_errors);
	tcase_add_test(tc, test_serial_null_and_zero_config);
	tcase_add_test(tc, test_serial_scratch);
	tcase_add_test(tc, test_serial_dlab_divisor);
	tcase_add_test(tc, test_serial_ier_mask);
	tcase_add_test(tc, test_serial_mcr_mask);
	tcase_add_test(tc, test_serial_thr_output_callback);
	tcase_add_test(tc, test_serial_output_fd);
	tcase_add_test(tc, test_serial_output_regular_file);
	tcase_add_test(tc, test_hostile_serial_output_full_pipe_never_blocks);
	tcase_add_test(tc, test_serial_output_flush_rounds);
	tcase_add_test(tc, test_serial_output_socket);
	tcase_add_test(tc, test_serial_output_concurrent_writers);
	tcase_add_test(tc, test_serial_rx_basic);
	tcase_add_test(tc, test_serial_rx_fifo_and_host_buffer_order);
	tcase_add_test(tc, test_hostile_serial_input_bounded);
	tcase_add_test(tc, test_serial_fifo_disabled_one_byte);
	tcase_add_test(tc, test_serial_fcr_clear_rx);
	tcase_add_test(tc, test_serial_iir_fifo_bits);
	tcase_add_test(tc, test_serial_rda_irq);
	tcase_add_test(tc, test_serial_irq_gated_by_out2);
	tcase_add_test(tc, test_serial_trigger_level);
	tcase_add_test(tc, test_serial_thre_irq);
	tcase_add_test(tc, test_serial_thre_reraised_on_etbei_rising);
	tcase_add_test(tc, test_serial_ier_reenable_reasserts);
	tcase_add_test(tc, test_serial_iir_priority);
	tcase_add_test(tc, test_serial_loopback_data);
	tcase_add_test(tc, test_serial_loopback_msr);
	tcase_add_test(tc, test_serial_loopback_overrun);
	tcase_add_test(tc, test_serial_loopback_host_input_waits);
	tcase_add_test(tc, test_serial_msr_interrupt);
	tcase_add_test(tc, test_serial_lsr_msr_read_only);
	tcase_add_test(tc, test_serial_bus_dispatch);
	tcase_add_test(tc, test_serial_linux_autoconfig);
	tcase_add_test(tc, test_serial_input_from_fd);
	tcase_add_test(tc, test_serial_input_from_fd_full_buffer);
	tcase_add_test(tc, test_serial_input_space_callback);
	tcase_add_test(tc, test_serial_reset);
	tcase_add_test(tc, test_serial_linux_startup_and_console_write);
	tcase_add_test(tc, test_serial_output_callback_reenters);
	tcase_add_test(tc, test_serial_input_space_callback_reenters);
	tcase_add_test(tc, test_serial_output_fd_failure_counted);
	tcase_add_test(tc, test_serial_concurrent_input);
	tcase_add_test(tc, test_hostile_serial_register_storm);
	tcase_add_test(tc, test_serial_interactive_isr);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cvmm_check_run(serial_suite(), false);
}
