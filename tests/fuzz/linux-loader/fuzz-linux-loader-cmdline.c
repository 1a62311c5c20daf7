/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * libFuzzer target: the command-line builder.  Input: one byte of
 * capacity, then operations, each an opcode byte (0 key=value, 1 bare key,
 * 2 raw fragment) and NUL-terminated strings.  After every operation the
 * line must stay within capacity, NUL-terminated at its length, free of
 * control characters, with balanced double quotes; a failed operation
 * must leave it unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cvmm/linux-loader.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Next NUL-terminated string of the input (a heap copy), or NULL. */
static char *next_str(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *z = memchr(*p, 0, (size_t)(end - *p));
	size_t n = z ? (size_t)(z - *p) : (size_t)(end - *p);
	char *s = malloc(n + 1);

	if (!s)
		abort();
	memcpy(s, *p, n);
	s[n] = 0;
	*p += z ? n + 1 : n;
	return s;
}

static void check(const struct boot_cmdline *c, size_t cap)
{
	const char *s = boot_cmdline_str(c);
	size_t len = boot_cmdline_len(c);
	unsigned int quotes = 0;

	if (len > cap || strlen(s) != len)
		abort();
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] < ' ' || (unsigned char)s[i] >= 0x7f)
			abort();
		quotes += s[i] == '"';
	}
	if (quotes % 2)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;
	struct boot_cmdline *c;
	size_t cap;
	int ops = 0;

	if (size < 1)
		return 0;
	cap = (size_t)*p++ + 1;
	if (boot_cmdline_create(cap, &c))
		abort();
	while (p < end && ops++ < 64) {
		uint8_t op = *p++ % 3;
		char *before = strdup(boot_cmdline_str(c));
		char *a = next_str(&p, end);
		char *b = op == 0 ? next_str(&p, end) : NULL;
		int err;

		if (!before)
			abort();
		if (op == 2)
			err = boot_cmdline_add_raw(c, a);
		else
			err = boot_cmdline_add(c, a, b);
		if (err && strcmp(before, boot_cmdline_str(c)))
			abort();
		check(c, cap);
		free(a);
		free(b);
		free(before);
	}
	boot_cmdline_destroy(c);
	return 0;
}
