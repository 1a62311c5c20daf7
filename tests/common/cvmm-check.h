/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Shared main() for the Check test binaries.
 *
 * cvmm_check_run() runs a suite and returns the process exit status: 0 when
 * every test passed, 1 otherwise, and 77 (meson's "skipped") when the suite
 * needs /dev/kvm and it cannot be opened.  Check's per-test timeout defaults
 * to 60 s here (override with CK_DEFAULT_TIMEOUT).
 */
#ifndef CVMM_TESTS_CHECK_H
#define CVMM_TESTS_CHECK_H

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CVMM_EXIT_SKIP 77

static inline bool cvmm_have_kvm(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static inline int cvmm_check_run(Suite *s, bool needs_kvm)
{
	SRunner *sr;
	int failed;

	if (needs_kvm && !cvmm_have_kvm()) {
		printf("SKIP: /dev/kvm cannot be opened (%s)\n",
		       strerror(errno));
		/* Check has no suite_free(); a runner frees its suites. */
		srunner_free(srunner_create(s));
		return CVMM_EXIT_SKIP;
	}
	setenv("CK_DEFAULT_TIMEOUT", "60", 0);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

#endif /* CVMM_TESTS_CHECK_H */
