/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Fuzzer for the 16550A register file: guest register reads/writes (through
 * the bus callbacks, any width) and host input, with invariants checked
 * after every step: the interrupt line matches IIR and OUT2, IER stays
 * masked, THR is always empty, input stays bounded.  Half the inputs send
 * output to a small non-blocking pipe through a 64-byte output buffer,
 * with the pipe drained and the buffer flushed at the input's choice:
 * the buffer stays bounded and every byte that left the device was either
 * read from the pipe, is still buffered or in the pipe, or was dropped.
 */
#include <cvmm/devices/serial.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(c)                                                         \
	do {                                                             \
		if (!(c)) {                                              \
			fprintf(stderr, "invariant: %s (line %d)\n", #c, \
				__LINE__);                               \
			abort();                                         \
		}                                                        \
	} while (0)

static bool line_level;
static unsigned out_bytes;
static struct serial *cur;
static bool echo; /* the output callback re-enters the device */

#define OUT_CAP 64u

/* Read what the pipe holds; returns the byte count. */
static size_t drain_pipe(int fd)
{
	uint8_t buf[4096];
	size_t n = 0;
	ssize_t r;

	while ((r = read(fd, buf, sizeof(buf))) > 0)
		n += (size_t)r;
	return n;
}

static int set_line(void *opaque, bool level)
{
	(void)opaque;
	CHECK(level != line_level); /* only changes are signalled */
	line_level = level;
	return 0;
}

static void out_cb(void *opaque, const uint8_t *b, size_t n)
{
	(void)opaque;
	out_bytes += (unsigned)n;
	CHECK(n >= 1 && n <= 8); /* one guest access at most */
	if (echo) {
		CHECK(serial_input(cur, b, n) >= 0);
		CHECK((serial_reg_read(cur, 5) & 0x60) == 0x60);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct serial_config cfg = {0};
	struct serial *s;
	const struct io_bus_ops *ops = serial_bus_ops();
	size_t i = 0, piped = 0, out_bytes_fd = 0;
	bool use_fd = size > 0 && (data[size - 1] & 2);
	int p[2] = {-1, -1};

	line_level = false;
	out_bytes = 0;
	echo = size > 0 && (data[size - 1] & 1);
	cfg.irq.set = set_line;
	cfg.input_capacity = 32;
	if (use_fd) {
		if (pipe2(p, O_NONBLOCK) != 0)
			return 0;
		/* one page: the pipe fills quickly */
		(void)fcntl(p[1], F_SETPIPE_SZ, 4096);
		cfg.use_out_fd = true;
		cfg.out_fd = p[1];
		cfg.output_capacity = OUT_CAP;
	} else {
		cfg.out = out_cb;
	}
	if (serial_create(&cfg, &s)) {
		if (use_fd) {
			close(p[0]);
			close(p[1]);
		}
		return 0;
	}
	cur = s;
	while (i + 2 <= size) {
		uint8_t op = data[i], v = data[i + 1];
		unsigned reg = op & 7, width = 1u << ((op >> 3) & 3);
		uint8_t buf[8];
		uint8_t lcr, mcr, iir, ier;
		bool before;

		i += 2;
		switch (op >> 5) {
		case 0:
		case 1:
		case 2:
			/* a THR write (offset 0 is written first) transmits
			 * unless DLAB or loopback is set; LCR and MCR reads
			 * have no side effects */
			if (reg == 0 && width <= SERIAL_NR_REGS &&
			    !(serial_reg_read(s, 3) & 0x80) &&
			    !(serial_reg_read(s, 4) & 0x10))
				out_bytes_fd++;
			memset(buf, v, sizeof(buf));
			if (reg + width <= SERIAL_NR_REGS)
				ops->write(s, reg, buf, width);
			break;
		case 3:
		case 4:
		case 5:
			if (reg + width <= SERIAL_NR_REGS)
				ops->read(s, reg, buf, width);
			break;
		case 6:
			CHECK(serial_input(s, data + i,
					   v % 40 < size - i ? v % 40
							     : size - i) >= 0);
			break;
		default:
			if (v == 0)
				serial_reset(s);
			else if (use_fd && v == 1)
				piped += drain_pipe(p[0]);
			else if (use_fd && v == 2)
				CHECK(serial_output_flush(s) >= 0);
			break;
		}
		CHECK(serial_output_pending(s) <= (use_fd ? OUT_CAP : 0));
		/* invariants, read without side effects where possible */
		before = serial_irq_level(s);
		CHECK(before == line_level);
		lcr = serial_reg_read(s, 3);
		mcr = serial_reg_read(s, 4);
		CHECK(mcr <= 0x1f);
		iir = serial_reg_read(s, 2);
		if (iir & 1)
			CHECK(!before);
		else
			CHECK(before == ((mcr & 0x08) != 0));
		CHECK((iir & 0x30) == 0);
		CHECK((serial_reg_read(s, 5) & 0x60) == 0x60);
		CHECK(serial_input_space(s) <= 32);
		if (!(lcr & 0x80)) {
			ier = serial_reg_read(s, 1);
			CHECK(ier <= 0x0f);
		}
	}
	if (use_fd) {
		/* everything transmitted is accounted for after a full drain */
		uint64_t dropped;

		for (unsigned k = 0; k < 4 && serial_output_pending(s); k++) {
			piped += drain_pipe(p[0]);
			CHECK(serial_output_flush(s) >= 0);
		}
		piped += drain_pipe(p[0]);
		CHECK(serial_output_pending(s) == 0);
		dropped = serial_output_dropped(s);
		CHECK(piped + dropped == out_bytes_fd);
		close(p[0]);
		close(p[1]);
	}
	serial_destroy(s);
	return 0;
}
