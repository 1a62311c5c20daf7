/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * Fault injection and resource tracking for libvm-memory's sources, which
 * test-vm-memory-faults compiles in directly with "-include fault-inject.h".
 * Every call that can fail (malloc, calloc, mmap, memfd_create, ftruncate,
 * fcntl, fstat) becomes a fault_* wrapper that fails once vmf_countdown
 * reaches 0; mmap, munmap and close are tracked so the test can check that
 * every mapping and descriptor the library made is released exactly once.
 */
#ifndef CVMM_TESTS_VM_MEMORY_FAULT_INJECT_H
#define CVMM_TESTS_VM_MEMORY_FAULT_INJECT_H

#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

void *fault_malloc(size_t n);
void *fault_calloc(size_t n, size_t m);
void *fault_mmap(void *addr, size_t len, int prot, int flags, int fd,
		 off_t off);
int fault_munmap(void *addr, size_t len);
int fault_close(int fd);
int fault_memfd_create(const char *name, unsigned int flags);
int fault_ftruncate(int fd, off_t len);
int fault_fcntl(int fd, int cmd, ...);
int fault_fstat(int fd, struct stat *st);

#define malloc(n)	       fault_malloc(n)
#define calloc(n, m)	       fault_calloc(n, m)
#define mmap(a, l, p, f, d, o) fault_mmap(a, l, p, f, d, o)
#define munmap(a, l)	       fault_munmap(a, l)
#define close(d)	       fault_close(d)
#define memfd_create(n, f)     fault_memfd_create(n, f)
#define ftruncate(d, l)	       fault_ftruncate(d, l)
#define fcntl(...)	       fault_fcntl(__VA_ARGS__)
#define fstat(d, s)	       fault_fstat(d, s)

#endif /* CVMM_TESTS_VM_MEMORY_FAULT_INJECT_H */
