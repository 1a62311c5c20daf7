// SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
// The liblinux-loader headers used from C++: they compile with -pedantic
// and the API links.  Exits 0 on success, 1 with a message on failure.
#include <cstdio>
#include <cstring>

#include "cvmm/linux-loader.h"
#include "cvmm/linux-loader/acpi.h"

int main()
{
	struct boot_cmdline *c = nullptr;
	struct kvm_msr_entry msrs[BOOT_MSRS_COUNT];

	if (boot_cmdline_create(32, &c) || boot_cmdline_add(c, "quiet", nullptr) ||
	    std::strcmp(boot_cmdline_str(c), "quiet") ||
	    boot_msrs_fill(msrs, BOOT_MSRS_COUNT) != BOOT_MSRS_COUNT) {
		std::fprintf(stderr, "linux-loader from C++ failed\n");
		boot_cmdline_destroy(c);
		return 1;
	}
	boot_cmdline_destroy(c);
	return 0;
}
