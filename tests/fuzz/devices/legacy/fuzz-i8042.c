/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Fuzzer for the i8042 controller: command/data port writes (any command,
 * any parameter), data/status reads, through the bus callbacks at any width.
 * Invariants after every step: IRQ 1 follows "keyboard byte at the head of
 * the buffer and CTR.KBDINT", IBF never set, only changes are signalled,
 * a full buffer drains within 16 reads, the reset callback re-entering the
 * device does not deadlock.
 */
#include <cvmm/devices/i8042.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                         \
	do {                                                             \
		if (!(c)) {                                              \
			fprintf(stderr, "invariant: %s (line %d)\n", #c, \
				__LINE__);                               \
			abort();                                         \
		}                                                        \
	} while (0)

static bool line_level;
static struct i8042 *cur;

static int set_line(void *opaque, bool level)
{
	(void)opaque;
	CHECK(level != line_level);
	line_level = level;
	return 0;
}

static void on_reset(void *opaque)
{
	(void)opaque;
	(void)i8042_read_status(cur); /* re-entry is allowed */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct i8042_config cfg = {0};
	const struct io_bus_ops *dops = i8042_data_bus_ops(),
				*cops = i8042_cmd_bus_ops();
	struct i8042 *k;
	size_t i = 0;

	line_level = false;
	cfg.kbd_irq.set = set_line;
	cfg.reset = on_reset;
	if (i8042_create(&cfg, &k))
		return 0;
	cur = k;
	while (i + 2 <= size) {
		uint8_t op = data[i], v = data[i + 1], buf[8], st;
		unsigned width = 1u << ((op >> 2) & 3);

		i += 2;
		memset(buf, v, sizeof(buf));
		switch (op & 3) {
		case 0:
			cops->write(k, 0, buf, width);
			break;
		case 1:
			dops->write(k, 0, buf, width);
			break;
		case 2:
			dops->read(k, 0, buf, width);
			for (unsigned j = 1; j < width; j++)
				CHECK(buf[j] == 0xff);
			break;
		default:
			cops->read(k, 0, buf, width);
			break;
		}
		st = i8042_read_status(k);
		CHECK(!(st & 0x02));
		if (!(st & 0x01))
			CHECK(!line_level);
		else if (st & 0x20)
			CHECK(!line_level);
		if (op == 0xff) {
			unsigned n = 0;

			while ((i8042_read_status(k) & 0x01) && n < 100) {
				(void)i8042_read_data(k);
				n++;
			}
			CHECK(n <= 16);
			CHECK(!line_level);
		}
	}
	i8042_destroy(k);
	return 0;
}
