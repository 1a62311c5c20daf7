/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * cvmm: the example VMM of c-vmm (see cvmm.1).  Shared declarations of its
 * command-line parser (args.c) and the VM (cvmm.c).
 */
#ifndef CVMM_EXAMPLE_VMM_H
#define CVMM_EXAMPLE_VMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit statuses (cvmm.1, EXIT STATUS). */
enum {
	CVMM_EXIT_OK = 0,      /* guest powered off or reset; Ctrl-A x */
	CVMM_EXIT_ERROR = 1,   /* KVM or internal error, guest crash */
	CVMM_EXIT_USAGE = 2,   /* bad command line; nothing was started */
	CVMM_EXIT_PANIC = 3,   /* the guest reported a panic (pvpanic) */
	CVMM_EXIT_TIMEOUT = 4, /* --timeout expired */
};

enum cvmm_console {
	CVMM_CONSOLE_SERIAL = 0,
	CVMM_CONSOLE_NONE,
	CVMM_CONSOLE_VIRTIO,
};

#define CVMM_DISKS_MAX	8
#define CVMM_SERIAL_MAX 20 /* virtio-blk device id bytes */

struct cvmm_disk {
	const char *path;
	bool readonly;
	bool io_uring;
	char serial[CVMM_SERIAL_MAX + 1];
};

#define CVMM_CHANNELS_MAX 8

struct cvmm_channel {
	const char *name;
	const char *socket;
	bool server;
};

/* --vsock (vsock.c); cid 0: no vsock device. */
struct cvmm_vsock {
	uint64_t cid;
	const char *socket;
};

/* What the command line asked for; the files are already open and mapped
 * (the parser validates them, so a bad file is a usage error). */
struct cvmm_opts {
	const char *kernel_path;
	const void *kernel;
	size_t kernel_size;
	const char *initrd_path;
	const void *initrd;
	size_t initrd_size;
	const char *cmdline; /* the whole kernel command line */
	uint64_t mem_size;
	unsigned int cpus;
	enum cvmm_console console;
	double timeout; /* seconds, 0 = none */
	bool rng;	/* virtio-rng */
	bool mmio; /* virtio devices on virtio-mmio instead of virtio-pci */
	struct cvmm_disk disks[CVMM_DISKS_MAX];
	unsigned int ndisks;
	struct cvmm_channel channels[CVMM_CHANNELS_MAX];
	unsigned int nchannels;
	struct cvmm_vsock vsock;
	bool verbose;
};

#define CVMM_MEM_MIN  (64ull << 20)
#define CVMM_MEM_MAX  (1ull << 40)
#define CVMM_CPUS_MAX 254u

/* Parses argv into @o.  Returns -1 to go on, or an exit status (after
 * --help / --version: 0; on a bad value: 2, with one line on stderr that
 * names the flag). */
int cvmm_parse_args(int argc, char **argv, struct cvmm_opts *o);
/* Unmaps the files the parser mapped. */
void cvmm_opts_release(struct cvmm_opts *o);

/* Runs the VM; returns the exit status. */
int cvmm_run(struct cvmm_opts *o, uint64_t start_ns);

uint64_t cvmm_now_ns(void);

/* vsock.c: parses the --vsock value (0, or exit status 2 after one line
 * on stderr); creates the device (negative errno), owned by the caller
 * through the returned core (virtio_device_destroy()). */
struct virtio_device;
int cvmm_vsock_parse(char *arg, struct cvmm_vsock *vs);
int cvmm_vsock_create(const struct cvmm_vsock *vs, struct virtio_device **dev);
#define CVMM_VSOCK_PCI_SLOT 16u

struct guest_memory;
/* A virtio-mmio device for the SSDT. */
struct cvmm_mmio_dev {
	uint32_t base, size, gsi;
};
/* ssdt.c: adds an SSDT with the i8042 and the RTC (ISA IRQs 1 and 8) and
 * the @n_mmio virtio-mmio devices (ACPI LNRO0005) to
 * the ACPI tables liblinux-loader wrote: at @rsdp, ending at @tables_end;
 * the copy of the XSDT must end below @limit.  0 or negative errno. */
int cvmm_acpi_add_legacy_ssdt(const struct guest_memory *m, uint64_t rsdp,
			      uint64_t tables_end, uint64_t limit,
			      const struct cvmm_mmio_dev *mmio, size_t n_mmio);

#endif
