/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * liblinux-loader: load a Linux kernel (bzImage, ELF vmlinux) into guest
 * memory and build the x86 boot structures (zero page, e820, MP table,
 * command line, initrd placement).
 *
 * NOT IMPLEMENTED YET.  This header reserves the names and prefixes
 * (linux_loader_, boot_) and declares nothing callable
 * but the version query of <cvmm/linux-loader-version.h>.
 */
#ifndef CVMM_LINUX_LOADER_H
#define CVMM_LINUX_LOADER_H

#include <cvmm/vm-memory.h>

/* Version macros (CVMM_LINUX_LOADER_VERSION...) and the version query, the
 * only functions the library has so far. */
#include <cvmm/linux-loader-version.h>

#endif /* CVMM_LINUX_LOADER_H */
