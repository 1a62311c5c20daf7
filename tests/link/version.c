/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Version test, built once per library (static and shared): the version
 * macros of the library's generated header agree with each other, with the
 * runtime query of the library linked in, and with meson's project version.
 *
 * tests/link/meson.build passes
 *   VERSION_HEADER  the generated header, e.g. <cvmm/vm-memory-version.h>
 *   MACRO, IDENT    its macro and function prefixes (CVMM_VM_MEMORY,
 *                   cvmm_vm_memory)
 *   EXPECTED        meson.project_version() as a string
 */
#include <stdio.h>
#include <string.h>

#include VERSION_HEADER

#define PASTE2(a, b) a##b
#define PASTE(a, b)  PASTE2(a, b)
#define M(suffix)    PASTE(MACRO, suffix)
#define F(suffix)    PASTE(IDENT, suffix)
#define STR2(x)	     #x
#define STR(x)	     STR2(x)

static int fail(const char *what)
{
	fprintf(stderr, "version: %s\n", what);
	return 1;
}

int main(void)
{
	char dotted[32];
	unsigned int number = (unsigned int)M(_VERSION_MAJOR) * 1000000u +
			      (unsigned int)M(_VERSION_MINOR) * 1000u +
			      (unsigned int)M(_VERSION_MICRO);

	snprintf(dotted, sizeof(dotted), "%d.%d.%d", M(_VERSION_MAJOR),
		 M(_VERSION_MINOR), M(_VERSION_MICRO));
	if (strcmp(M(_VERSION), EXPECTED) != 0)
		return fail("the version string macro is not meson's version");
	if (strcmp(dotted, EXPECTED) != 0)
		return fail("MAJOR.MINOR.MICRO is not meson's version");
	if ((unsigned int)M(_VERSION_NUMBER) != number)
		return fail("VERSION_NUMBER does not match its parts");
	if (F(_version)() != (unsigned int)M(_VERSION_NUMBER))
		return fail("the runtime query differs from VERSION_NUMBER");
	if (!F(_version_string)() ||
	    strcmp(F(_version_string)(), M(_VERSION)) != 0)
		return fail("the runtime string differs from the macro");
	printf("%s_version: %s, ok\n", STR(IDENT), F(_version_string)());
	return 0;
}
