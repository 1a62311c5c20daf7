/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/* Unit tests for the i8042 keyboard controller model. */
#include "cvmm-check.h"
#include "irq-recorder.h"

#include <cvmm/devices/bus.h>
#include <cvmm/devices/i8042.h>

#define STR_OBF	    0x01
#define STR_SYS	    0x04
#define STR_CMDDAT  0x08
#define STR_AUXDATA 0x20

static struct i8042 *k;
static struct irq_recorder rec;
static unsigned resets_seen;

static void on_reset(void *opaque)
{
	unsigned *n = opaque;

	(*n)++;
}

static void setup(void)
{
	struct i8042_config cfg = {0};

	resets_seen = 0;
	cfg.kbd_irq = irq_recorder_line(&rec);
	cfg.reset = on_reset;
	cfg.reset_opaque = &resets_seen;
	ck_assert_int_eq(i8042_create(&cfg, &k), 0);
}

static void teardown(void)
{
	i8042_destroy(k);
	k = NULL;
}

/* Read one response byte, asserting it was there. */
static uint8_t resp(void)
{
	ck_assert_uint_eq(i8042_read_status(k) & STR_OBF, STR_OBF);
	return i8042_read_data(k);
}

static void assert_empty(void)
{
	ck_assert_uint_eq(i8042_read_status(k) & STR_OBF, 0);
}

START_TEST(test_i8042_create_errors)
{
	struct i8042 *x = (void *)1;
	struct i8042_config cfg = {0};

	ck_assert_int_eq(i8042_create(&cfg, NULL), -EINVAL);
	ck_assert_int_eq(i8042_create(NULL, NULL), -EINVAL);
	i8042_destroy(NULL);
	ck_assert_uint_eq(i8042_read_status(NULL), 0xff);
	ck_assert_uint_eq(i8042_read_data(NULL), 0xff);
	i8042_write_cmd(NULL, 0xfe);
	i8042_write_data(NULL, 0xff);
	ck_assert_uint_eq(i8042_reset_count(NULL), 0);
	ck_assert_int_eq(i8042_register(NULL, NULL, 0x60, 0x64), -EINVAL);
	ck_assert_int_eq(i8042_create(NULL, &x), 0);
	ck_assert_int_eq(i8042_register(x, NULL, 0x60, 0x64), -EINVAL);
	i8042_destroy(x);
}
END_TEST

/* NULL and a zeroed config are the defaults: the power-on controller, no
 * line, resets counted without a callback. */
START_TEST(test_i8042_null_and_zero_config)
{
	struct i8042_config zero = {0};
	struct i8042 *kb[2];

	ck_assert_int_eq(i8042_create(NULL, &kb[0]), 0);
	ck_assert_int_eq(i8042_create(&zero, &kb[1]), 0);
	for (unsigned i = 0; i < 2; i++) {
		ck_assert_uint_eq(i8042_read_status(kb[i]) & 0x04, 0x04);
		i8042_write_cmd(kb[i], 0x20); /* read the configuration byte */
		ck_assert_uint_eq(i8042_read_data(kb[i]), 0x65);
		i8042_write_cmd(kb[i], 0xfe);
		ck_assert_uint_eq(i8042_reset_count(kb[i]), 1);
		i8042_destroy(kb[i]);
	}
}
END_TEST

START_TEST(test_i8042_initial_status)
{
	uint8_t s = i8042_read_status(k);

	ck_assert_uint_eq(s & STR_OBF, 0);
	ck_assert_uint_eq(s & STR_SYS, STR_SYS);
}
END_TEST

START_TEST(test_i8042_self_test)
{
	i8042_write_cmd(k, 0xaa);
	ck_assert_uint_eq(i8042_read_status(k) & STR_CMDDAT, STR_CMDDAT);
	ck_assert_uint_eq(resp(), 0x55);
	assert_empty();
}
END_TEST

START_TEST(test_i8042_ctr_read_write)
{
	uint8_t ctr;

	i8042_write_cmd(k, 0x20);
	ctr = resp();
	ck_assert_uint_eq(ctr & 0x01, 0x01); /* keyboard interrupt on */
	i8042_write_cmd(k, 0x60);
	i8042_write_data(k, 0x74);
	ck_assert_uint_eq(i8042_read_status(k) & STR_CMDDAT, 0);
	assert_empty(); /* a CTR write is not a keyboard command */
	i8042_write_cmd(k, 0x20);
	ck_assert_uint_eq(resp(), 0x74);
	/* SYS flag in the status follows the CTR */
	ck_assert_uint_eq(i8042_read_status(k) & STR_SYS, STR_SYS);
	i8042_write_cmd(k, 0x60);
	i8042_write_data(k, 0x00);
	ck_assert_uint_eq(i8042_read_status(k) & STR_SYS, 0);
}
END_TEST

START_TEST(test_i8042_controller_ram)
{
	i8042_write_cmd(k, 0x65);
	i8042_write_data(k, 0x3c);
	i8042_write_cmd(k, 0x25);
	ck_assert_uint_eq(resp(), 0x3c);
}
END_TEST

START_TEST(test_i8042_kbd_interface_test)
{
	i8042_write_cmd(k, 0xab);
	ck_assert_uint_eq(resp(), 0x00);
}
END_TEST

START_TEST(test_i8042_kbd_disable_enable)
{
	i8042_write_cmd(k, 0xad);
	i8042_write_cmd(k, 0x20);
	ck_assert_uint_eq(resp() & 0x10, 0x10);
	i8042_write_cmd(k, 0xae);
	i8042_write_cmd(k, 0x20);
	ck_assert_uint_eq(resp() & 0x10, 0);
}
END_TEST

START_TEST(test_i8042_aux_absent)
{
	/* Linux i8042_check_aux(): loopback without AUXDATA, test fails */
	i8042_write_cmd(k, 0xd3);
	i8042_write_data(k, 0x5a);
	ck_assert_uint_eq(i8042_read_status(k) & (STR_OBF | STR_AUXDATA),
			  STR_OBF);
	ck_assert_uint_eq(resp(), 0x5a);
	i8042_write_cmd(k, 0xa9);
	ck_assert_uint_eq(resp(), 0x01);
	i8042_write_cmd(k, 0xa8);
	i8042_write_cmd(k, 0x20);
	ck_assert_uint_eq(resp() & 0x20, 0);
	i8042_write_cmd(k, 0xa7);
	i8042_write_cmd(k, 0x20);
	ck_assert_uint_eq(resp() & 0x20, 0x20);
	i8042_write_cmd(k, 0xd4); /* byte to the absent mouse: dropped */
	i8042_write_data(k, 0xf4);
	assert_empty();
}
END_TEST

START_TEST(test_i8042_reset_command)
{
	i8042_write_cmd(k, 0xfe);
	ck_assert_uint_eq(resets_seen, 1);
	ck_assert_uint_eq(i8042_reset_count(k), 1);
	i8042_write_cmd(k, 0xff); /* pulse nothing */
	ck_assert_uint_eq(resets_seen, 1);
	i8042_write_cmd(k, 0xf0); /* pulse all lines, reset included */
	ck_assert_uint_eq(resets_seen, 2);
}
END_TEST

START_TEST(test_i8042_reset_via_output_port)
{
	i8042_write_cmd(k, 0xd0);
	ck_assert_uint_eq(resp() & 0x03, 0x03);
	i8042_write_cmd(k, 0xd1);
	i8042_write_data(k, 0x03); /* reset line kept high */
	ck_assert_uint_eq(resets_seen, 0);
	i8042_write_cmd(k, 0xd1);
	i8042_write_data(k, 0x02);
	ck_assert_uint_eq(resets_seen, 1);
}
END_TEST

START_TEST(test_i8042_a20)
{
	i8042_write_cmd(k, 0xdd);
	i8042_write_cmd(k, 0xd0);
	ck_assert_uint_eq(resp() & 0x02, 0);
	i8042_write_cmd(k, 0xdf);
	i8042_write_cmd(k, 0xd0);
	ck_assert_uint_eq(resp() & 0x02, 0x02);
}
END_TEST

START_TEST(test_i8042_keyboard_commands)
{
	i8042_write_data(k, 0xff);
	ck_assert_uint_eq(resp(), 0xfa);
	ck_assert_uint_eq(resp(), 0xaa);
	i8042_write_data(k, 0xf2);
	ck_assert_uint_eq(resp(), 0xfa);
	ck_assert_uint_eq(resp(), 0xab);
	ck_assert_uint_eq(resp(), 0x83);
	i8042_write_data(k, 0xee);
	ck_assert_uint_eq(resp(), 0xee);
	i8042_write_data(k, 0xed); /* LEDs + parameter */
	ck_assert_uint_eq(resp(), 0xfa);
	i8042_write_data(k, 0x07);
	ck_assert_uint_eq(resp(), 0xfa);
	i8042_write_data(k, 0xf0); /* get scan code set */
	ck_assert_uint_eq(resp(), 0xfa);
	i8042_write_data(k, 0x00);
	ck_assert_uint_eq(resp(), 0xfa);
	ck_assert_uint_eq(resp(), 0x02);
	i8042_write_data(k, 0xf4);
	ck_assert_uint_eq(resp(), 0xfa);
	assert_empty();
}
END_TEST

START_TEST(test_i8042_irq_per_byte)
{
	i8042_write_data(k, 0xf2); /* three bytes */
	ck_assert(rec.level);
	ck_assert_uint_eq(rec.asserts, 1);
	(void)i8042_read_data(k);
	ck_assert(rec.level);
	ck_assert_uint_eq(rec.asserts, 2); /* a new edge for byte 2 */
	(void)i8042_read_data(k);
	ck_assert_uint_eq(rec.asserts, 3);
	(void)i8042_read_data(k);
	ck_assert(!rec.level);
	ck_assert_uint_eq(rec.deasserts, 3);
}
END_TEST

START_TEST(test_i8042_irq_disabled_by_ctr)
{
	i8042_write_cmd(k, 0x60);
	i8042_write_data(k, 0x44); /* KBDINT off */
	i8042_write_data(k, 0xee);
	ck_assert_uint_eq(i8042_read_status(k) & STR_OBF, STR_OBF);
	ck_assert(!rec.level);
	ck_assert_uint_eq(rec.asserts, 0);
	ck_assert_uint_eq(resp(), 0xee);
}
END_TEST

START_TEST(test_hostile_i8042_output_queue_bounded)
{
	unsigned n = 0;

	for (unsigned i = 0; i < 1000; i++)
		i8042_write_data(k, 0xf2);
	while ((i8042_read_status(k) & STR_OBF) && n < 100) {
		(void)i8042_read_data(k);
		n++;
	}
	ck_assert_uint_eq(n, 16);
	/* an empty buffer re-reads the last byte without crashing */
	(void)i8042_read_data(k);
	assert_empty();
}
END_TEST

START_TEST(test_i8042_unknown_command_ignored)
{
	i8042_write_cmd(k, 0x90);
	i8042_write_cmd(k, 0xc8);
	assert_empty();
	ck_assert_uint_eq(resets_seen, 0);
	i8042_write_cmd(k, 0xaa);
	ck_assert_uint_eq(resp(), 0x55);
}
END_TEST

START_TEST(test_i8042_linux_probe_sequence)
{
	struct io_bus *bus;
	uint8_t v, ctr;
	unsigned flushed = 0;

	ck_assert_int_eq(io_bus_create(&bus), 0);
	ck_assert_int_eq(
		i8042_register(k, bus, I8042_DATA_PORT, I8042_CMD_PORT), 0);
	ck_assert_int_eq(i8042_register(k, bus, I8042_DATA_PORT, 0x65),
			 -EEXIST);
	ck_assert_uint_eq(io_bus_count(bus), 2);
	/* i8042_flush */
	for (;;) {
		ck_assert_int_eq(io_bus_read(bus, 0x64, &v, 1), 0);
		if (!(v & STR_OBF) || flushed++ > 16)
			break;
		ck_assert_int_eq(io_bus_read(bus, 0x60, &v, 1), 0);
	}
	ck_assert_uint_eq(flushed, 0);
	/* self test */
	v = 0xaa;
	ck_assert_int_eq(io_bus_write(bus, 0x64, &v, 1), 0);
	ck_assert_int_eq(io_bus_read(bus, 0x60, &v, 1), 0);
	ck_assert_uint_eq(v, 0x55);
	/* read CTR, disable kbd/aux, write it back, read back */
	v = 0x20;
	ck_assert_int_eq(io_bus_write(bus, 0x64, &v, 1), 0);
	ck_assert_int_eq(io_bus_read(bus, 0x60, &ctr, 1), 0);
	ctr |= 0x30;
	ctr &= (uint8_t)~0x03;
	v = 0x60;
	ck_assert_int_eq(io_bus_write(bus, 0x64, &v, 1), 0);
	ck_assert_int_eq(io_bus_write(bus, 0x60, &ctr, 1), 0);
	v = 0x20;
	ck_assert_int_eq(io_bus_write(bus, 0x64, &v, 1), 0);
	ck_assert_int_eq(io_bus_read(bus, 0x60, &v, 1), 0);
	ck_assert_uint_eq(v, ctr);
	/* reboot */
	v = 0xfe;
	ck_assert_int_eq(io_bus_write(bus, 0x64, &v, 1), 0);
	ck_assert_uint_eq(resets_seen, 1);
	io_bus_destroy(bus);
}
END_TEST

/*
 * Linux's __i8042_command() on ports 0x60/0x64 through the bus: IBF wait,
 * command, parameter bytes, then for each result byte an OBF wait (bounded
 * like I8042_CTL_TIMEOUT) and, for the AUX loopback, the AUXDATA check that
 * returns -1 *without reading* the byte.
 */
static int linux_i8042_command(struct io_bus *bus, uint8_t *param,
			       unsigned command)
{
	uint8_t v = (uint8_t)command, st;

	ck_assert_int_eq(io_bus_read(bus, 0x64, &st, 1), 0);
	ck_assert_uint_eq(st & 0x02, 0); /* IBF never stuck */
	ck_assert_int_eq(io_bus_write(bus, 0x64, &v, 1), 0);
	for (unsigned i = 0; i < ((command >> 12) & 0xf); i++)
		ck_assert_int_eq(io_bus_write(bus, 0x60, &param[i], 1), 0);
	for (unsigned i = 0; i < ((command >> 8) & 0xf); i++) {
		unsigned tries = 0;

		do {
			ck_assert_int_eq(io_bus_read(bus, 0x64, &st, 1), 0);
		} while (!(st & STR_OBF) && ++tries < 100);
		if (!(st & STR_OBF))
			return -ETIMEDOUT;
		if (command == 0x11d3 && !(st & STR_AUXDATA))
			return -1;
		ck_assert_int_eq(io_bus_read(bus, 0x60, &param[i], 1), 0);
	}
	return 0;
}

/* i8042_flush(): -EIO when more than I8042_BUFFER_SIZE bytes come. */
static unsigned linux_i8042_flush(struct io_bus *bus)
{
	unsigned n = 0;
	uint8_t st, v;

	for (;;) {
		ck_assert_int_eq(io_bus_read(bus, 0x64, &st, 1), 0);
		if (!(st & STR_OBF))
			return n;
		ck_assert_uint_lt(n, 16);
		n++;
		ck_assert_int_eq(io_bus_read(bus, 0x60, &v, 1), 0);
	}
}

/*
 * Replays i8042_controller_init(), i8042_check_aux() and
 * i8042_setup_kbd()/i8042_enable_kbd_port() as Linux runs them on a
 * controller without AUX port, then atkbd's GETID.  Before the fix the
 * loopback echo Linux does not read stayed queued: the AUX test read it
 * instead of its 0x01, and the real answer was left behind to raise IRQ 1
 * as a stray keyboard byte once the keyboard interrupt was enabled.
 */
START_TEST(test_i8042_linux_check_aux_leaves_nothing)
{
	struct io_bus *bus;
	uint8_t ctr[2], param, id[3], v;
	unsigned asserts;

	ck_assert_int_eq(io_bus_create(&bus), 0);
	ck_assert_int_eq(
		i8042_register(k, bus, I8042_DATA_PORT, I8042_CMD_PORT), 0);
	/* i8042_controller_init: stable CTR read, kbd off, write back */
	ck_assert_uint_eq(linux_i8042_flush(bus), 0);
	ck_assert_int_eq(linux_i8042_command(bus, &ctr[0], 0x0120), 0);
	ck_assert_int_eq(linux_i8042_command(bus, &ctr[1], 0x0120), 0);
	ck_assert_uint_eq(ctr[0], ctr[1]);
	ctr[0] |= 0x10;
	ctr[0] &= (uint8_t)~0x01;
	ck_assert_int_eq(linux_i8042_command(bus, &ctr[0], 0x1060), 0);
	ck_assert_uint_eq(linux_i8042_flush(bus), 0);
	/* i8042_check_aux */
	ck_assert_uint_eq(linux_i8042_flush(bus), 0);
	param = 0x5a;
	ck_assert_int_eq(linux_i8042_command(bus, &param, 0x11d3), -1);
	ck_assert_int_eq(linux_i8042_command(bus, &param, 0x01a9), 0);
	ck_assert_uint_eq(param, 0x01); /* its own answer, not the echo */
	/* i8042_enable_kbd_port: kbd on, its interrupt on */
	ctr[0] &= (uint8_t)~0x10;
	ctr[0] |= 0x01;
	ck_assert(!rec.level);
	asserts = rec.asserts;
	ck_assert_int_eq(linux_i8042_command(bus, &ctr[0], 0x1060), 0);
	ck_assert(!rec.level); /* no stray byte raises IRQ 1 */
	ck_assert_uint_eq(rec.asserts, asserts);
	ck_assert_int_eq(io_bus_read(bus, 0x64, &v, 1), 0);
	ck_assert_uint_eq(v & STR_OBF, 0);
	/* atkbd_probe: GETID through the data port */
	v = 0xf2;
	ck_assert_int_eq(io_bus_write(bus, 0x60, &v, 1), 0);
	ck_assert(rec.level);
	for (unsigned i = 0; i < 3; i++)
		ck_assert_int_eq(io_bus_read(bus, 0x60, &id[i], 1), 0);
	ck_assert_uint_eq(id[0], 0xfa);
	ck_assert_uint_eq(id[1], 0xab);
	ck_assert_uint_eq(id[2], 0x83);
	ck_assert(!rec.level);
	ck_assert_uint_eq(linux_i8042_flush(bus), 0);
	io_bus_destroy(bus);
}
END_TEST

/* Keyboard bytes survive a controller command; its unread answers do not. */
START_TEST(test_i8042_controller_response_replaced)
{
	i8042_write_data(k, 0xee); /* keyboard echo: a keyboard byte */
	i8042_write_cmd(k, 0x20);  /* CTR, left unread */
	i8042_write_cmd(k, 0xaa);  /* self-test replaces it */
	ck_assert_uint_eq(resp(), 0xee);
	ck_assert_uint_eq(resp(), 0x55);
	assert_empty();
}
END_TEST

/* A taken command port: refused before the data port is ever visible. */
START_TEST(test_i8042_register_cmd_port_taken)
{
	static const struct io_bus_ops none = {NULL, NULL};
	struct io_bus *bus;

	ck_assert_int_eq(io_bus_create(&bus), 0);
	ck_assert_int_eq(io_bus_register(bus, 0x64, 1, &none, NULL), 0);
	ck_assert_int_eq(i8042_register(k, bus, 0x60, 0x64), -EEXIST);
	ck_assert_int_eq(io_bus_find(bus, 0x60, NULL, NULL), -ENOENT);
	ck_assert_int_eq(i8042_register(k, bus, 0x60, 0x60), -EEXIST);
	ck_assert_uint_eq(io_bus_count(bus), 1);
	ck_assert_int_eq(io_bus_unregister(bus, 0x64), 0);
	ck_assert_int_eq(i8042_register(k, bus, 0x60, 0x64), 0);
	ck_assert_uint_eq(io_bus_count(bus), 2);
	io_bus_destroy(bus);
}
END_TEST

/* Found by fuzz-devices-i8042: a reset pulse command that discarded an
 * unread answer left IRQ 1 asserted over an empty buffer. */
START_TEST(test_i8042_irq_follows_discarded_answer)
{
	i8042_write_cmd(k, 0x20); /* CTR answer, KBDINT set: IRQ 1 */
	ck_assert(rec.level);
	i8042_write_cmd(k, 0xfe); /* reset pulse discards it */
	ck_assert_uint_eq(resets_seen, 1);
	assert_empty();
	ck_assert(!rec.level);
	i8042_write_cmd(k, 0x20);
	ck_assert(rec.level);
	i8042_write_cmd(k, 0xa7); /* no answer of its own */
	assert_empty();
	ck_assert(!rec.level);
}
END_TEST

static Suite *i8042_suite(void)
{
	Suite *s = suite_create("i8042");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_i8042_create_errors);
	tcase_add_test(tc, test_i8042_null_and_zero_config);
	tcase_add_test(tc, test_i8042_initial_status);
	tcase_add_test(tc, test_i8042_self_test);
	tcase_add_test(tc, test_i8042_ctr_read_write);
	tcase_add_test(tc, test_i8042_controller_ram);
	tcase_add_test(tc, test_i8042_kbd_interface_test);
	tcase_add_test(tc, test_i8042_kbd_disable_enable);
	tcase_add_test(tc, test_i8042_aux_absent);
	tcase_add_test(tc, test_i8042_reset_command);
	tcase_add_test(tc, test_i8042_reset_via_output_port);
	tcase_add_test(tc, test_i8042_a20);
	tcase_add_test(tc, test_i8042_keyboard_commands);
	tcase_add_test(tc, test_i8042_irq_per_byte);
	tcase_add_test(tc, test_i8042_irq_disabled_by_ctr);
	tcase_add_test(tc, test_hostile_i8042_output_queue_bounded);
	tcase_add_test(tc, test_i8042_unknown_command_ignored);
	tcase_add_test(tc, test_i8042_linux_probe_sequence);
	tcase_add_test(tc, test_i8042_linux_check_aux_leaves_nothing);
	tcase_add_test(tc, test_i8042_controller_response_replaced);
	tcase_add_test(tc, test_i8042_irq_follows_discarded_answer);
	tcase_add_test(tc, test_i8042_register_cmd_port_taken);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return cvmm_check_run(i8042_suite(), false);
}
