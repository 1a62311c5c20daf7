/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * The fault injector of the c-vmm tests (implementation: fault-inject.c).
 *
 * A library's sources are compiled into a test-only static library with
 * "-DCVMM_FAULT_INJECT_WRAP -include fault-inject.h" (tests/meson.build
 * holds those arguments as cvmm_fault_inject_args).  In those sources every
 * call that can fail (malloc, calloc, realloc, mmap, memfd_create,
 * ftruncate, fcntl, fstat) becomes a fault_* wrapper that fails once the
 * countdown set by fault_arm() has run out; mmap, munmap and close are
 * tracked as well, so a test can check that every mapping and descriptor
 * the library made is released exactly once.  A test program includes this
 * header without CVMM_FAULT_INJECT_WRAP: it sees the controls below and
 * keeps the real functions for itself.
 *
 * Single-threaded: the counters are plain variables.
 */
#ifndef CVMM_TESTS_FAULT_INJECT_H
#define CVMM_TESTS_FAULT_INJECT_H

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* ------------------------------------------------------------- controls */

/*
 * fault_arm() - let @n more fallible calls succeed, then fail every later
 * one (until fault_disarm()); also resets fault_injected.  @n < 0 never
 * fails.
 */
void fault_arm(long n);
/* fault_disarm() - stop failing calls. */
void fault_disarm(void);
/* Calls failed by injection since the last fault_arm(). */
extern long fault_injected;
/* munmap or close of something the library did not map or open (or
 * released twice); such a call is not passed on. */
extern long fault_bad_releases;
/* Mappings and descriptors the library made and has not released. */
int fault_live_maps(void);
int fault_live_fds(void);
/* Nothing made is live and nothing was released twice. */
bool fault_all_released(void);

/* ------------------------------------------------------------- wrappers */

void *fault_malloc(size_t n);
void *fault_calloc(size_t n, size_t m);
void *fault_realloc(void *p, size_t n);
void *fault_mmap(void *addr, size_t len, int prot, int flags, int fd,
		 off_t off);
int fault_munmap(void *addr, size_t len);
int fault_close(int fd);
int fault_memfd_create(const char *name, unsigned int flags);
int fault_ftruncate(int fd, off_t len);
int fault_fcntl(int fd, int cmd, ...);
int fault_fstat(int fd, struct stat *st);

#ifdef CVMM_FAULT_INJECT_WRAP
#define malloc(n)	       fault_malloc(n)
#define calloc(n, m)	       fault_calloc(n, m)
#define realloc(p, n)	       fault_realloc(p, n)
#define mmap(a, l, p, f, d, o) fault_mmap(a, l, p, f, d, o)
#define munmap(a, l)	       fault_munmap(a, l)
#define close(d)	       fault_close(d)
#define memfd_create(n, f)     fault_memfd_create(n, f)
#define ftruncate(d, l)	       fault_ftruncate(d, l)
#define fcntl(...)	       fault_fcntl(__VA_ARGS__)
#define fstat(d, s)	       fault_fstat(d, s)
#endif

#endif /* CVMM_TESTS_FAULT_INJECT_H */
