/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * liblinux-loader: load a Linux kernel (bzImage, ELF vmlinux) into guest
 * memory and build the x86 boot structures (zero page, e820, MP table,
 * command line, initrd placement).
 *
 * NOT IMPLEMENTED YET.  This header reserves the names and prefixes
 * (linux_loader_, boot_) and declares nothing callable.
 */
#ifndef CVMM_LINUX_LOADER_H
#define CVMM_LINUX_LOADER_H

#include <cvmm/vm-memory.h>

/** Version of this header's API; 0 means "nothing implemented yet". */
#define CVMM_LINUX_LOADER_API_VERSION 0

#endif /* CVMM_LINUX_LOADER_H */
