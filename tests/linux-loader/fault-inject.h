/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Allocation fault injection for liblinux-loader's sources, which
 * test-linux-loader-enomem compiles in directly with
 * "-include fault-inject.h": malloc, calloc and realloc in those sources
 * fail once fault_countdown reaches 0.
 */
#ifndef CVMM_TESTS_LINUX_LOADER_FAULT_INJECT_H
#define CVMM_TESTS_LINUX_LOADER_FAULT_INJECT_H

#include <stddef.h>
#include <stdlib.h>

/* < 0: never fail; otherwise how many allocations still succeed. */
extern long fault_countdown;
/* Allocations that failed because of injection. */
extern long fault_failures;

void *fault_malloc(size_t n);
void *fault_calloc(size_t n, size_t m);
void *fault_realloc(void *p, size_t n);

#define malloc(n)     fault_malloc(n)
#define calloc(n, m)  fault_calloc(n, m)
#define realloc(p, n) fault_realloc(p, n)

#endif /* CVMM_TESTS_LINUX_LOADER_FAULT_INJECT_H */
