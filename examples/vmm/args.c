/* SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause */
/*
 * cvmm's command line.  Every value is checked here, before /dev/kvm is
 * opened: a bad one gives one line on stderr naming the flag and exit
 * status 2, with nothing started and no file created.  The kernel is
 * parsed with liblinux-loader here too, so "not a kernel" is a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cvmm/linux-loader.h>

#include "cvmm.h"

#ifndef CVMM_VERSION
#define CVMM_VERSION "unknown"
#endif

#define DEFAULT_CMDLINE "console=ttyS0 reboot=k panic=-1"

static const char usage_text[] =
	"usage: cvmm --kernel PATH [options]\n"
	"Boots a Linux kernel (bzImage or ELF vmlinux with a PVH note) in a "
	"KVM virtual machine.\n"
	"\n"
	"  --kernel PATH       kernel image (required)\n"
	"  --initrd PATH       initramfs\n"
	"  --cmdline STR       kernel command line (default: \"" DEFAULT_CMDLINE
	"\")\n"
	"  --memory SIZE       guest RAM: MiB, or with a K, M or G suffix "
	"(default 512M)\n"
	"  --cpus N            vCPUs, 1..254 (default 1)\n"
	"  --console KIND      serial (16550 on the terminal, default), "
	"virtio\n"
	"                      (virtio-console: the guest's hvc0) or none\n"
	"  --timeout SECONDS   stop the guest after this long (exit status "
	"4)\n"
	"  --rng               a virtio-rng device (virtio-pci with MSI-X)\n"
	"  --disk path=FILE[,readonly=on][,backend=sync|io_uring][,serial=ID]\n"
	"                      a virtio-blk disk (repeatable, at most 8)\n"
	"  --disk vhost_user=SOCKET\n"
	"                      a virtio-blk disk served by a vhost-user "
	"backend\n"
	"  --transport pci|mmio  virtio devices on virtio-pci (default) or "
	"virtio-mmio\n"
	"  --channel name=NAME,socket=PATH[,server=on]\n"
	"                      a virtio-console named port on a unix socket "
	"(repeatable)\n"
	"  --vfio PATH         pass through the PCI function at PATH\n"
	"                      (/sys/bus/pci/devices/DDDD:BB:DD.F, bound to "
	"vfio-pci)\n"
	"  --net tap=NAME[,mac=MAC][,queues=N][,vhost=on] | "
	"user[,hostfwd=tcp:ADDR:PORT-:PORT]\n"
	"                      a virtio-net card on a tap or on user "
	"networking\n"
	"                      (vhost=on: the kernel's vhost-net moves the "
	"frames)\n"
	"  --vsock cid=N,socket=PATH | cid=N,vhost=on\n"
	"                      a virtio-vsock device, host side on unix "
	"sockets\n"
	"                      or on the kernel's vhost-vsock (AF_VSOCK)\n"
	"  --fs tag=NAME,socket=PATH[,queue_size=N]\n"
	"                      a virtio-fs device served by a vhost-user-fs "
	"backend\n"
	"                      (virtiofsd); the guest mounts -t virtiofs NAME\n"
	"  --virtio-ring split|packed[,in_order=on]\n"
	"                      virtqueue layout the virtio devices offer "
	"(default\n"
	"                      split); in_order=on also offers IN_ORDER on "
	"disks\n"
	"                      with backend=sync\n"
	"  --verbose           startup figures and the reason of every exit "
	"on stderr\n"
	"  --help              this text\n"
	"  --version           cvmm's version\n"
	"\n"
	"On the serial console, Ctrl-A x quits and Ctrl-A Ctrl-A sends "
	"Ctrl-A.\n"
	"Exit status: 0 guest powered off or reset (or Ctrl-A x), 1 error, "
	"2 bad\n"
	"command line, 3 guest panic (pvpanic), 4 timeout.  See cvmm(1).\n";

/* One line naming the flag, exit status 2. */
static int bad(const char *flag, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int bad(const char *flag, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "cvmm: %s: ", flag);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CVMM_EXIT_USAGE;
}

/* Maps a whole file read-only; 0 or a usage error. */
static int map_file(const char *flag, const char *path, const void **data,
		    size_t *size)
{
	struct stat st;
	void *p;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return bad(flag, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		int e = errno;

		close(fd);
		return bad(flag, "%s: %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return bad(flag, "%s: not a regular file", path);
	}
	if (st.st_size == 0) {
		close(fd);
		return bad(flag, "%s: empty file", path);
	}
	if ((uint64_t)st.st_size > (4ull << 30)) {
		close(fd);
		return bad(flag, "%s: larger than 4 GiB", path);
	}
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return bad(flag, "%s: mmap: %s", path, strerror(errno));
	*data = p;
	*size = (size_t)st.st_size;
	return 0;
}

/* "512", "512M", "2G", "65536K" (no suffix: MiB). */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned shift = 20;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	if (*end) {
		switch (*end) {
		case 'k':
		case 'K':
			shift = 10;
			break;
		case 'm':
		case 'M':
			shift = 20;
			break;
		case 'g':
		case 'G':
			shift = 30;
			break;
		default:
			return -1;
		}
		end++;
		if (*end == 'i' && end[1] == 'B')
			end += 2;
		else if (*end == 'B')
			end++;
		if (*end)
			return -1;
	}
	if (v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	if ((*s < '0' || *s > '9') && *s != '.')
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !(v > 0) || v > 1e7)
		return -1;
	*out = v;
	return 0;
}

/* The characters boot_cmdline_add_raw() accepts: printable ASCII, balanced
 * double quotes. */
static int check_cmdline(const char *s)
{
	unsigned quotes = 0;

	for (; *s; s++) {
		if (*s < 0x20 || *s > 0x7e)
			return -1;
		if (*s == '"')
			quotes++;
	}
	return quotes % 2 ? -2 : 0;
}

/* vhost_user=SOCKET: a unix socket a vhost-user-blk backend listens on;
 * no other key goes with it (the backend owns the image). */
static int check_vhost_user_disk(const struct cvmm_disk *d)
{
	struct stat st;

	if (d->path || d->readonly || d->io_uring || d->serial[0])
		return bad("--disk", "vhost_user=SOCKET takes no other key");
	if (!*d->vhost_user)
		return bad("--disk", "empty vhost_user socket");
	if (stat(d->vhost_user, &st) < 0)
		return bad("--disk", "%s: %s", d->vhost_user, strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return bad("--disk", "%s: not a unix socket", d->vhost_user);
	return 0;
}

/* path=FILE[,readonly=on|off][,backend=sync|io_uring][,serial=ID] or
 * vhost_user=SOCKET; @s is argv's string, cut in place at the commas. */
static int parse_disk(char *s, struct cvmm_disk *d)
{
	struct stat st;
	char *item, *save = NULL;

	memset(d, 0, sizeof(*d));
	for (item = strtok_r(s, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		char *v = strchr(item, '=');

		if (!v)
			return bad("--disk", "'%s' is not key=value", item);
		*v++ = 0;
		if (!strcmp(item, "path")) {
			if (!*v)
				return bad("--disk", "empty path");
			d->path = v;
		} else if (!strcmp(item, "readonly")) {
			if (!strcmp(v, "on"))
				d->readonly = true;
			else if (!strcmp(v, "off"))
				d->readonly = false;
			else
				return bad("--disk", "readonly=%s: on or off",
					   v);
		} else if (!strcmp(item, "backend")) {
			if (!strcmp(v, "sync"))
				d->io_uring = false;
			else if (!strcmp(v, "io_uring"))
				d->io_uring = true;
			else
				return bad("--disk",
					   "backend=%s: sync or io_uring", v);
		} else if (!strcmp(item, "vhost_user")) {
			d->vhost_user = v; /* checked after the loop */
		} else if (!strcmp(item, "serial")) {
			size_t i, n = strlen(v);

			if (n > CVMM_SERIAL_MAX)
				return bad("--disk",
					   "serial=%s: longer than %u bytes", v,
					   CVMM_SERIAL_MAX);
			for (i = 0; i < n; i++)
				if (v[i] < 0x21 || v[i] > 0x7e)
					return bad("--disk",
						   "serial=%s: printable ASCII "
						   "only",
						   v);
			memcpy(d->serial, v, n + 1);
		} else {
			return bad("--disk",
				   "unknown key '%s' (path, "
				   "readonly, backend, serial, vhost_user)",
				   item);
		}
	}
	if (d->vhost_user)
		return check_vhost_user_disk(d);
	if (!d->path)
		return bad("--disk", "path=FILE is required");
	if (stat(d->path, &st) < 0)
		return bad("--disk", "%s: %s", d->path, strerror(errno));
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return bad("--disk", "%s: not a regular file or block device",
			   d->path);
	if (access(d->path, d->readonly ? R_OK : R_OK | W_OK) < 0)
		return bad("--disk", "%s: %s%s", d->path, strerror(errno),
			   d->readonly ? "" : " (readonly=on?)");
	return 0;
}

/* name=NAME,socket=PATH[,server=on|off] (a virtio-console named port). */
/* --vfio PATH: one function, a directory with an iommu_group link. */
static int parse_vfio(const char *path, struct cvmm_opts *o)
{
	char link[4096];
	struct stat st;

#ifndef CVMM_HAVE_VFIO
	(void)link;
	(void)st;
	(void)o;
	return bad("--vfio", "%s: cvmm was built without libvfio", path);
#else
	if (o->vfio)
		return bad("--vfio", "only one device can be passed through");
	if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
		return bad("--vfio", "%s: not a sysfs device directory", path);
	if ((size_t)snprintf(link, sizeof(link), "%s/iommu_group", path) >=
		    sizeof(link) ||
	    stat(link, &st) < 0)
		return bad("--vfio",
			   "%s has no IOMMU group (no IOMMU, or not "
			   "a PCI device)",
			   path);
	o->vfio = path;
	return 0;
#endif
}

static int parse_channel(char *s, struct cvmm_channel *ch)
{
	struct sockaddr_un sun;
	char *item, *save = NULL;
	size_t i;

	memset(ch, 0, sizeof(*ch));
	for (item = strtok_r(s, ",", &save); item;
	     item = strtok_r(NULL, ",", &save)) {
		char *v = strchr(item, '=');

		if (!v)
			return bad("--channel", "'%s' is not key=value", item);
		*v++ = 0;
		if (!strcmp(item, "name")) {
			ch->name = v;
		} else if (!strcmp(item, "socket")) {
			ch->socket = v;
		} else if (!strcmp(item, "server")) {
			if (!strcmp(v, "on"))
				ch->server = true;
			else if (!strcmp(v, "off"))
				ch->server = false;
			else
				return bad("--channel", "server=%s: on or off",
					   v);
		} else {
			return bad("--channel",
				   "unknown key '%s' (name, "
				   "socket, server)",
				   item);
		}
	}
	if (!ch->name || !*ch->name)
		return bad("--channel", "name=NAME is required");
	if (strlen(ch->name) > 255)
		return bad("--channel", "name longer than 255 bytes");
	for (i = 0; ch->name[i]; i++)
		if (ch->name[i] < 0x21 || ch->name[i] > 0x7e)
			return bad("--channel",
				   "name=%s: printable ASCII "
				   "without spaces only",
				   ch->name);
	if (!ch->socket || !*ch->socket)
		return bad("--channel", "socket=PATH is required");
	if (strlen(ch->socket) >= sizeof(sun.sun_path))
		return bad("--channel", "socket path longer than %zu bytes",
			   sizeof(sun.sun_path) - 1);
	if (ch->server) {
		/* Its folder must exist: the device binds there at start. */
		char dir[sizeof(sun.sun_path)];
		char *slash;
		struct stat st;

		strcpy(dir, ch->socket);
		slash = strrchr(dir, '/');
		if (slash == dir)
			slash[1] = 0;
		else if (slash)
			*slash = 0;
		else
			strcpy(dir, ".");
		if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
			return bad("--channel", "socket=%s: no folder %s",
				   ch->socket, dir);
		if (lstat(ch->socket, &st) == 0 && !S_ISSOCK(st.st_mode))
			return bad("--channel",
				   "socket=%s exists and is not a socket",
				   ch->socket);
	}
	return 0;
}

/* split|packed[,in_order=on|off]: the ring layout (and IN_ORDER) the
 * virtio devices offer; the guest's driver still chooses. */
static int parse_virtio_ring(char *s, struct cvmm_opts *o)
{
	char *save = NULL, *item = strtok_r(s, ",", &save);

	if (!item)
		return bad("--virtio-ring", "split or packed is required");
	if (!strcmp(item, "split"))
		o->ring_packed = false;
	else if (!strcmp(item, "packed"))
		o->ring_packed = true;
	else
		return bad("--virtio-ring", "'%s' is not split or packed",
			   item);
	while ((item = strtok_r(NULL, ",", &save))) {
		char *v = strchr(item, '=');

		if (!v || strncmp(item, "in_order=", 9))
			return bad("--virtio-ring",
				   "'%s': only in_order=on|off may follow "
				   "the layout",
				   item);
		v++;
		if (!strcmp(v, "on"))
			o->ring_in_order = true;
		else if (!strcmp(v, "off"))
			o->ring_in_order = false;
		else
			return bad("--virtio-ring", "in_order=%s: on or off",
				   v);
	}
	return 0;
}

enum {
	OPT_KERNEL = 256,
	OPT_INITRD,
	OPT_CMDLINE,
	OPT_MEMORY,
	OPT_CPUS,
	OPT_CONSOLE,
	OPT_TIMEOUT,
	OPT_RNG,
	OPT_VFIO,
	OPT_DISK,
	OPT_CHANNEL,
	OPT_TRANSPORT,
	OPT_NET,
	OPT_VSOCK,
	OPT_FS,
	OPT_VIRTIO_RING,
	OPT_VERBOSE,
	OPT_HELP,
	OPT_VERSION,
	OPT_END
};

static const struct option long_opts[] = {
	{"kernel", required_argument, NULL, OPT_KERNEL},
	{"initrd", required_argument, NULL, OPT_INITRD},
	{"cmdline", required_argument, NULL, OPT_CMDLINE},
	{"memory", required_argument, NULL, OPT_MEMORY},
	{"cpus", required_argument, NULL, OPT_CPUS},
	{"console", required_argument, NULL, OPT_CONSOLE},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
	{"rng", no_argument, NULL, OPT_RNG},
	{"vfio", required_argument, NULL, OPT_VFIO},
	{"disk", required_argument, NULL, OPT_DISK},
	{"channel", required_argument, NULL, OPT_CHANNEL},
	{"transport", required_argument, NULL, OPT_TRANSPORT},
	{"net", required_argument, NULL, OPT_NET},
	{"vsock", required_argument, NULL, OPT_VSOCK},
	{"fs", required_argument, NULL, OPT_FS},
	{"virtio-ring", required_argument, NULL, OPT_VIRTIO_RING},
	{"verbose", no_argument, NULL, OPT_VERBOSE},
	{"help", no_argument, NULL, OPT_HELP},
	{"version", no_argument, NULL, OPT_VERSION},
	{NULL, 0, NULL, 0},
};

void cvmm_opts_release(struct cvmm_opts *o)
{
	if (o->kernel)
		munmap((void *)o->kernel, o->kernel_size);
	if (o->initrd)
		munmap((void *)o->initrd, o->initrd_size);
	o->kernel = o->initrd = NULL;
}

static int parse(int argc, char **argv, struct cvmm_opts *o)
{
	bool seen[OPT_END - OPT_KERNEL] = {false};
	struct linux_loader_kernel k;
	unsigned long v;
	int c, r;

	memset(o, 0, sizeof(*o));
	o->mem_size = 512ull << 20;
	o->cpus = 1;
	o->cmdline = DEFAULT_CMDLINE;
	opterr = 0;
	/* "+": stop at the first non-option; "-" style short options none. */
	while ((c = getopt_long(argc, argv, "+:", long_opts, NULL)) != -1) {
		char flag[32];

		if (c == '?') {
			if (optopt >= OPT_KERNEL && optopt < OPT_END) {
				snprintf(flag, sizeof(flag), "--%s",
					 long_opts[optopt - OPT_KERNEL].name);
				return bad(flag, "takes no value");
			}
			if (optopt)
				return bad("command line", "unknown option -%c",
					   optopt);
			return bad(argv[optind - 1], "unknown option "
						     "(see cvmm --help)");
		}
		if (c == ':')
			return bad(argv[optind - 1], "needs a value");
		snprintf(flag, sizeof(flag), "--%s",
			 long_opts[c - OPT_KERNEL].name);
		if (c != OPT_VERBOSE && c != OPT_DISK && c != OPT_CHANNEL &&
		    seen[c - OPT_KERNEL])
			return bad(flag, "given twice");
		seen[c - OPT_KERNEL] = true;
		switch (c) {
		case OPT_KERNEL:
			if (!*optarg)
				return bad("--kernel", "empty path");
			o->kernel_path = optarg;
			break;
		case OPT_INITRD:
			if (!*optarg)
				return bad("--initrd", "empty path");
			o->initrd_path = optarg;
			break;
		case OPT_CMDLINE:
			r = check_cmdline(optarg);
			if (r == -1)
				return bad("--cmdline", "only printable ASCII "
							"characters are "
							"allowed");
			if (r == -2)
				return bad("--cmdline", "unbalanced double "
							"quote");
			o->cmdline = optarg;
			break;
		case OPT_MEMORY:
			if (parse_size(optarg, &o->mem_size) < 0)
				return bad("--memory",
					   "'%s' is not a size (MiB, or a "
					   "number with K, M or G)",
					   optarg);
			if (o->mem_size < CVMM_MEM_MIN ||
			    o->mem_size > CVMM_MEM_MAX)
				return bad("--memory",
					   "'%s' is outside 64M..1024G",
					   optarg);
			if (o->mem_size & 0xfffff)
				return bad("--memory",
					   "'%s' is not a multiple of 1 MiB",
					   optarg);
			break;
		case OPT_CPUS:
			if (parse_uint(optarg, CVMM_CPUS_MAX, &v) < 0 || !v)
				return bad("--cpus",
					   "'%s' is not a number of vCPUs "
					   "(1..%u)",
					   optarg, CVMM_CPUS_MAX);
			o->cpus = (unsigned)v;
			break;
		case OPT_CONSOLE:
			if (!strcmp(optarg, "serial"))
				o->console = CVMM_CONSOLE_SERIAL;
			else if (!strcmp(optarg, "none"))
				o->console = CVMM_CONSOLE_NONE;
			else if (!strcmp(optarg, "virtio"))
				o->console = CVMM_CONSOLE_VIRTIO;
			else
				return bad("--console",
					   "'%s' is not serial, virtio or none",
					   optarg);
			break;
		case OPT_TIMEOUT:
			if (parse_seconds(optarg, &o->timeout) < 0)
				return bad("--timeout",
					   "'%s' is not a positive number of "
					   "seconds",
					   optarg);
			break;
		case OPT_DISK:
			if (o->ndisks == CVMM_DISKS_MAX)
				return bad("--disk", "at most %u disks",
					   CVMM_DISKS_MAX);
			r = parse_disk(optarg, &o->disks[o->ndisks]);
			if (r)
				return r;
			o->ndisks++;
			break;
		case OPT_CHANNEL:
			if (o->nchannels == CVMM_CHANNELS_MAX)
				return bad("--channel", "at most %u channels",
					   CVMM_CHANNELS_MAX);
			r = parse_channel(optarg, &o->channels[o->nchannels]);
			if (r)
				return r;
			o->nchannels++;
			break;
		case OPT_TRANSPORT:
			if (!strcmp(optarg, "pci"))
				o->mmio = false;
			else if (!strcmp(optarg, "mmio"))
				o->mmio = true;
			else
				return bad("--transport",
					   "'%s' is not pci or mmio", optarg);
			break;
		case OPT_NET:
			if ((r = cvmm_net_parse(optarg, &o->net)) >= 0)
				return r;
			break;
		case OPT_RNG:
			o->rng = true;
			break;
		case OPT_VFIO:
			r = parse_vfio(optarg, o);
			if (r)
				return r;
			break;
		case OPT_VSOCK:
			r = cvmm_vsock_parse(optarg, &o->vsock);
			if (r)
				return r;
			break;
		case OPT_FS:
			r = cvmm_fs_parse(optarg, &o->fs);
			if (r)
				return r;
			break;
		case OPT_VIRTIO_RING:
			r = parse_virtio_ring(optarg, o);
			if (r)
				return r;
			break;
		case OPT_VERBOSE:
			o->verbose = true;
			break;
		case OPT_HELP:
			fputs(usage_text, stdout);
			return 0;
		case OPT_VERSION:
			printf("cvmm %s\n", CVMM_VERSION);
			return 0;
		}
	}
	if (optind < argc)
		return bad(argv[optind], "unexpected argument (options are "
					 "--name value; see cvmm --help)");
	if (!o->kernel_path)
		return bad("--kernel", "is required (see cvmm --help)");

	r = map_file("--kernel", o->kernel_path, &o->kernel, &o->kernel_size);
	if (r)
		return r;
	if (o->initrd_path) {
		r = map_file("--initrd", o->initrd_path, &o->initrd,
			     &o->initrd_size);
		if (r)
			return r;
	}
	r = linux_loader_parse_bzimage(o->kernel, o->kernel_size, NULL, &k);
	if (r == -ENOEXEC)
		r = linux_loader_parse_elf(o->kernel, o->kernel_size, &k);
	if (r == -ENOEXEC)
		return bad("--kernel",
			   "%s: neither a bzImage nor an ELF "
			   "vmlinux",
			   o->kernel_path);
	if (r < 0)
		return bad("--kernel", "%s: unusable kernel image: %s",
			   o->kernel_path,
			   r == -ENOTSUP ? "no 64-bit entry (bzImage) or no "
					   "PVH note (ELF)"
					 : strerror(-r));
	if (strlen(o->cmdline) > k.cmdline_max)
		return bad("--cmdline",
			   "longer than the kernel's limit of %u "
			   "bytes",
			   k.cmdline_max);
	if (k.end > o->mem_size)
		return bad("--memory",
			   "too small for this kernel (needs more "
			   "than %llu MiB)",
			   (unsigned long long)(k.end >> 20));
	if (o->mmio && strstr(o->cmdline, "acpi=off"))
		return bad("--transport", "mmio devices are described in ACPI: "
					  "not with acpi=off");
	if (o->initrd_path) {
		if (o->initrd_size + k.end > o->mem_size)
			return bad("--memory", "too small for the kernel and "
					       "the initrd");
	}
	return -1;
}

int cvmm_parse_args(int argc, char **argv, struct cvmm_opts *o)
{
	int r = parse(argc, argv, o);

	if (r >= 0)
		cvmm_opts_release(o);
	return r;
}
