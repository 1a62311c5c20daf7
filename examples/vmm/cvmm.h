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
	const char *vhost_user; /* vhost_user=SOCKET instead of path= */
};

#define CVMM_CHANNELS_MAX 8

struct cvmm_channel {
	const char *name;
	const char *socket;
	bool server;
};

/* --net (net.c) */
#define CVMM_NET_QUEUES_MAX 4
#define CVMM_NET_FWDS_MAX   8
struct cvmm_net {
	bool set;
	bool user;    /* user networking, else tap */
	char tap[16]; /* interface name */
	uint8_t mac[6];
	unsigned queues;		     /* queue pairs (tap) */
	const char *fwds[CVMM_NET_FWDS_MAX]; /* hostfwd specs (checked) */
	unsigned nfwds;
	bool vhost; /* vhost=on: the rings on /dev/vhost-net (tap only) */
};

/* --vsock (vsock.c); cid 0: no vsock device. */
struct cvmm_vsock {
	uint64_t cid;
	const char *socket;
	bool vhost; /* vhost=on: /dev/vhost-vsock, no socket */
};

/* --fs (vhost-user.c); tag NULL: no virtio-fs device. */
struct cvmm_fs {
	const char *tag;
	const char *socket;
	unsigned queue_size; /* 0: 128 */
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
	bool ring_packed;   /* --virtio-ring packed: offer RING_PACKED */
	bool ring_in_order; /* ...,in_order=on: IN_ORDER where it holds */
	struct cvmm_disk disks[CVMM_DISKS_MAX];
	unsigned int ndisks;
	struct cvmm_channel channels[CVMM_CHANNELS_MAX];
	unsigned int nchannels;
	struct cvmm_net net;
	struct cvmm_vsock vsock;
	struct cvmm_fs fs;
	bool verbose;
	const char *vfio; /* --vfio: sysfs path of a vfio-pci function */
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

/* net.c: parses --net's value @s (modified) into @n: -1 to go on, or 2
 * after one line on stderr; creates the device it asked for (0, or a
 * negative errno after one line on stderr). */
int cvmm_net_parse(char *s, struct cvmm_net *n);
struct virtio_device;
int cvmm_net_create(const struct cvmm_net *n, struct virtio_device **out);
/* vsock.c: parses the --vsock value (0, or exit status 2 after one line
 * on stderr); creates the device (negative errno), owned by the caller
 * through the returned core (virtio_device_destroy()). */
struct virtio_device;
int cvmm_vsock_parse(char *arg, struct cvmm_vsock *vs);
int cvmm_vsock_create(const struct cvmm_vsock *vs, struct virtio_device **dev);
/* --verbose: with vhost=on, the notifications cvmm's threads relayed
 * (0 when the kernel used the ioeventfds and irqfds directly).  Before
 * the devices are destroyed. */
void cvmm_vsock_report(void);
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

/* irq.c: interrupt delivery to KVM (irqfds, GSI routes, fallbacks). */
struct cvmm_irq;
struct cvmm_irq_msix;
struct kvm_vm_obj;
struct virtio_pci;
struct virtio_pci_config;
struct irq_line;
/* The VM's routing state (in-kernel irqchip already created). */
int cvmm_irq_create(struct kvm_vm_obj *kvm, struct cvmm_irq **out);
/* Deassigns every irqfd and frees; after the devices are gone. */
void cvmm_irq_destroy(struct cvmm_irq *irq);
/* Before virtio_pci_create(): sets @pc's MSI sink (KVM_SIGNAL_MSI) and
 * msix_update hook; *@out is owned by @irq. */
int cvmm_irq_msix_config(struct cvmm_irq *irq, struct virtio_pci_config *pc,
			 struct cvmm_irq_msix **out);
/* After virtio_pci_create(): a GSI, an eventfd and an irqfd per vector
 * (vectors that cannot have them keep KVM_SIGNAL_MSI). */
int cvmm_irq_msix_attach(struct cvmm_irq_msix *d, struct virtio_pci *vp);
/* A group of @n vectors for a device that is not virtio-pci (--vfio):
 * each with a GSI, an event notifier registered as its irqfd and an MSI
 * route kept by cvmm_irq_vector_update() (opaque: the group), the same
 * machinery as cvmm_irq_msix_attach().  *@out is owned by @irq.
 * -ENOTSUP with CVMM_IRQFD=0, -ENOMEM. */
int cvmm_irq_vectors_create(struct cvmm_irq *irq, uint16_t n,
			    struct cvmm_irq_msix **out);
/* Vector @i's notifier, NULL when it got no GSI or irqfd. */
struct event_notifier;
struct event_notifier *cvmm_irq_vector_notifier(const struct cvmm_irq_msix *d,
						uint16_t i);
/* The route hook (pci_passthrough_config.vector_update), @opaque = the
 * group: 0 when vector @vector's irqfd now delivers (@addr, @data). */
int cvmm_irq_vector_update(void *opaque, uint16_t vector, uint64_t addr,
			   uint32_t data, bool masked);
/* A level-triggered line on @gsi: irqfd + resample fd, else KVM_IRQ_LINE. */
int cvmm_irq_level_line(struct cvmm_irq *irq, uint32_t gsi,
			struct irq_line *line);
/* PCI INTA# of device @slot: a level line on its GSI (*@gsi, for
 * PCI_INTERRUPT_LINE), recorded for cvmm_irq_pci_routes(). */
int cvmm_irq_pci_intx(struct cvmm_irq *irq, unsigned slot,
		      struct irq_line *line, uint32_t *gsi);
/* The INTx routes so far, for the ACPI _PRT and the MP table. */
struct boot_pci_irq;
/* An MSI sink sending with KVM_SIGNAL_MSI (counted in the report). */
struct msi_sink cvmm_irq_msi_sink(struct cvmm_irq *irq);
/* Records INTA# of device @slot on @gsi for the _PRT and the MP table,
 * for a device whose line is wired elsewhere (--vfio).  0 or -ENOSPC. */
int cvmm_irq_pci_route_add(struct cvmm_irq *irq, unsigned slot, uint32_t gsi);
size_t cvmm_irq_pci_routes(const struct cvmm_irq *irq,
			   const struct boot_pci_irq **out);
/* I/O thread: adds the resample fds to @ep with tags @tag + index, and
 * handles one that is ready. */
int cvmm_irq_epoll_add(struct cvmm_irq *irq, int ep, uint64_t tag);
void cvmm_irq_ready(struct cvmm_irq *irq, uint64_t index);
/* --verbose: one line of figures on stderr. */
void cvmm_irq_report(struct cvmm_irq *irq);
/* vfio.c: --vfio.  Opens the function at @sysfs_path through VFIO,
 * DMA-maps all of @mem, puts it at 00:@slot.0 of @root with INTx on a
 * resampling irqfd on @intx_gsi and its MSI/MSI-X vectors on irqfds and
 * GSI routes of @irq (VFIO signals KVM directly while a vector is
 * unmasked); vectors that cannot (no route, masked, CVMM_IRQFD=0) come
 * through eventfds a thread of its own polls, to @irq's MSI sink.
 * 0 or negative errno (one line on stderr says what failed). */
struct pci_root;
struct msi_sink;
struct cvmm_vfio;
int cvmm_vfio_create(const char *sysfs_path, struct kvm_vm_obj *kvm,
		     struct guest_memory *mem, struct pci_root *root,
		     unsigned slot, struct cvmm_irq *irq, uint32_t intx_gsi,
		     bool verbose, struct cvmm_vfio **out);
/* Stops the thread, takes the function out of @root, unmaps and closes.
 * Before pci_root_destroy().  NULL is accepted. */
void cvmm_vfio_destroy(struct cvmm_vfio *v, struct pci_root *root);
/* vhost-user.c: the device of a --disk vhost_user=SOCKET (owned by the
 * returned core: virtio_device_destroy() frees it); prints its error. */
struct virtio_device;
int cvmm_vhost_user_disk(const struct cvmm_disk *d, struct virtio_device **dev);
/* --verbose: per vhost-user device, the notifications cvmm's threads
 * relayed.  Before the devices are destroyed. */
void cvmm_vhost_user_report(void);
/* vhost-user.c: --fs tag=NAME,socket=PATH[,queue_size=N] (@s modified):
 * 0, or exit status 2 after one line on stderr; the virtio-fs device on
 * that vhost-user-fs backend (virtiofsd), owned by the returned core,
 * at PCI slot CVMM_FS_PCI_SLOT (negative errno after one line on stderr). */
int cvmm_fs_parse(char *s, struct cvmm_fs *fs);
int cvmm_fs_create(const struct cvmm_fs *fs, struct virtio_device **dev);
#define CVMM_FS_PCI_SLOT 13u

#endif
