/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Memory-allocation fault injection for libvm-allocator's sources, which
 * test-vm-allocator-enomem compiles in directly with
 * "-include fault-inject.h": malloc and calloc in those sources become
 * fault_malloc / fault_calloc, which fail once fault_countdown reaches 0.
 */
#ifndef CVMM_TESTS_FAULT_INJECT_H
#define CVMM_TESTS_FAULT_INJECT_H

#include <stddef.h>
#include <stdlib.h>

/* < 0: never fail.  Otherwise the number of allocations that still
 * succeed; every allocation after those fails. */
extern long fault_countdown;
/* Allocations that failed because of injection. */
extern long fault_failures;

void *fault_malloc(size_t n);
void *fault_calloc(size_t n, size_t m);

#define malloc(n)    fault_malloc(n)
#define calloc(n, m) fault_calloc(n, m)

#endif /* CVMM_TESTS_FAULT_INJECT_H */
