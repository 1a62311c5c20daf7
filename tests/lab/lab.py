#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""The nested lab: image builder and runner (see README.md beside this file).

Subcommands
  build   build (or reuse) the lab images in <builddir>/tests/lab/cache
  test    boot the lab, run its checks (all, or those of --only/$LAB_ONLY)
          and report them as TAP: one line per check and per sub-result
          (kvm program, nested-guest check), their output as TAP comments;
          a check that froze the lab VM runs once more in a new boot
  run     run one shell command (or --shell) inside the lab, interactively
"""

import argparse
import fcntl
import json
import os
import re
import select
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))

# Modules of the lab VM: KVM (both vendors; the init picks by cpu flag) and
# VFIO.  Dependencies are added from `modinfo -F depends`.
LAB_MODULES = ["kvm_amd", "kvm_intel", "vfio", "vfio_iommu_type1", "vfio_pci"]
LAB_MODULES.append("tun")  # guest-net-tap: cvmm --net tap
# guest-vhost-net, guest-vhost-vsock: cvmm --net tap=..,vhost=on, --vsock
# cid=..,vhost=on (/dev/vhost-net, /dev/vhost-vsock)
LAB_MODULES += ["vhost_net", "vhost_vsock"]
# Modules of the nested guests, loaded in this order by the guest's /init.
GUEST_MODULES = [
    "virtio", "virtio_ring", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
    "virtio_pci", "virtio_mmio", "virtio_blk", "failover", "net_failover", "virtio_net",
    "virtio_console", "virtio_rng", "vsock",
    "vmw_vsock_virtio_transport_common", "vmw_vsock_virtio_transport",
    "pvpanic_pci",
]
GUEST_MODULES += ["fuse", "virtiofs"]  # guest-virtiofs: cvmm --fs
# In the guest's initramfs but not loaded by its /init: the guest-vfio boot
# (labmode=vfio) loads them itself.
GUEST_EXTRA_MODULES = ["uio_pci_generic"]
LIB_OPTIONS = ["kvm-ioctls", "vm-memory", "virtio-queue", "vm-allocator",
               "vfio", "devices", "linux-loader", "vhost"]
# The libraries cvmm links (libdevices needs virtio-queue and vm-allocator):
# the static build enables them whatever the parent build says.
LAUNCHER_LIBS = ["kvm-ioctls", "vm-memory", "virtio-queue", "vm-allocator",
                 "devices", "linux-loader"]

# no_timer_check: under a loaded TCG host the kernel's check that the timer
# interrupt works through the (remapped) IO-APIC can time out and panic.
LAB_CMDLINE = ("console=ttyS0 panic=-1 quiet intel_iommu=on no_timer_check"
               " rdinit=/init")


class LabError(Exception):
    """A problem that means the lab could not run (not a failed check)."""


def log(msg):
    """Progress, timings and errors go to stderr: meson shows a TAP test's
    stderr with -v, and stdout is the TAP report."""
    for line in msg.split("\n"):
        print("lab: " + line, file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


# ------------------------------------------------------------------ cpio
class Cpio:
    """Writes a newc cpio archive (what the kernel's initramfs reads)."""

    def __init__(self):
        self.parts = []
        self.ino = 1
        self.dirs = set()

    def _entry(self, name, mode, data=b"", rdev=(0, 0)):
        name = name.lstrip("/")
        nb = name.encode() + b"\0"
        hdr = "070701" + "".join("%08X" % v for v in (
            self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1],
            len(nb), 0))
        self.ino += 1
        buf = hdr.encode() + nb
        buf += b"\0" * (-len(buf) % 4)
        buf += data + b"\0" * (-len(data) % 4)
        self.parts.append(buf)

    def mkdir(self, path):
        path = path.strip("/")
        if not path or path in self.dirs:
            return
        self.mkdir(os.path.dirname(path))
        self.dirs.add(path)
        self._entry(path, stat.S_IFDIR | 0o755)

    def add_bytes(self, path, data, mode=0o644):
        self.mkdir(os.path.dirname(path.strip("/")))
        self._entry(path, stat.S_IFREG | mode, data)

    def add_file(self, path, src, mode=None):
        with open(src, "rb") as f:
            data = f.read()
        if mode is None:
            mode = 0o755 if os.access(src, os.X_OK) else 0o644
        self.add_bytes(path, data, mode)

    def symlink(self, path, target):
        self.mkdir(os.path.dirname(path.strip("/")))
        self._entry(path, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, path, major, minor, mode=0o600):
        self.mkdir(os.path.dirname(path.strip("/")))
        self._entry(path, stat.S_IFCHR | mode, rdev=(major, minor))

    def data(self):
        self._entry("TRAILER!!!", 0)
        out = b"".join(self.parts)
        return out + b"\0" * (-len(out) % 512)


def write_if_changed(path, data):
    if os.path.exists(path):
        with open(path, "rb") as f:
            if f.read() == data:
                return
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# ------------------------------------------------------------ packages
def need_tool(tool, pkg):
    if shutil.which(tool) is None:
        raise LabError("%s not found: install it with tests/lab/install-deps.sh"
                       " (apt-get install %s)" % (tool, pkg))


def apt_version(pkg):
    out = subprocess.run(["apt-cache", "show", "--no-all-versions", pkg],
                         capture_output=True, text=True)
    m = re.search(r"^Version: (\S+)", out.stdout, re.M)
    if out.returncode != 0 or not m:
        raise LabError("apt-cache knows no package %s; run `apt-get update`"
                       " (Debian's main archive must be an apt source)" % pkg)
    return m.group(1)


def resolve_kernel_pkg():
    """linux-image-amd64 -> (linux-image-6.1.0-NN-amd64, version)."""
    pkg = os.environ.get("LAB_KERNEL_PKG")
    if not pkg:
        need_tool("apt-cache", "apt")
        out = subprocess.run(["apt-cache", "depends", "linux-image-amd64"],
                             capture_output=True, text=True)
        m = re.search(r"Depends: (linux-image-\S+)", out.stdout)
        if not m:
            raise LabError("cannot resolve linux-image-amd64 with apt-cache"
                           " depends; run `apt-get update` first")
        pkg = m.group(1)
    return pkg, apt_version(pkg)


def fetch_deb(cache, pkg, version):
    debs = os.path.join(cache, "debs")
    os.makedirs(debs, exist_ok=True)
    quoted = version.replace(":", "%3a")
    want = "%s_%s_" % (pkg, quoted)
    for f in os.listdir(debs):
        if f.startswith(want) and f.endswith(".deb"):
            return os.path.join(debs, f)
    log("downloading %s %s with apt-get download" % (pkg, version))
    r = subprocess.run(["apt-get", "download", "%s=%s" % (pkg, version)],
                       cwd=debs, capture_output=True, text=True)
    for f in os.listdir(debs):
        if f.startswith(want) and f.endswith(".deb"):
            return os.path.join(debs, f)
    raise LabError("apt-get download %s=%s failed:\n%s%s\nThe lab needs"
                   " Debian's kernel package; check apt sources and network"
                   % (pkg, version, r.stdout, r.stderr))


def unpack_deb(cache, deb):
    dest = os.path.join(cache, "unpacked",
                        os.path.basename(deb)[:-len(".deb")])
    if not os.path.exists(os.path.join(dest, ".done")):
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(dest)
        run(["dpkg", "-x", deb, dest])
        open(os.path.join(dest, ".done"), "w").close()
    return dest


# ------------------------------------------------------------- modules
def module_index(moddir):
    """Module name (with _) -> path of its file, compressed or not."""
    idx = {}
    for root, _, files in os.walk(os.path.join(moddir, "kernel")):
        for f in files:
            m = re.match(r"(.*)\.ko(\.xz|\.zst|\.gz)?$", f)
            if m:
                idx[m.group(1).replace("-", "_")] = os.path.join(root, f)
    return idx


def plain_module(cache, path):
    """A .ko busybox insmod can load: decompress .ko.xz/.zst/.gz once."""
    if path.endswith(".ko"):
        return path
    out = os.path.join(cache, "ko", os.path.basename(path).rsplit(".", 1)[0])
    if not os.path.exists(out):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        tool = {"xz": ["xz", "-dc"], "zst": ["zstd", "-dc"],
                "gz": ["gzip", "-dc"]}[path.rsplit(".", 1)[1]]
        need_tool(tool[0], {"xz": "xz-utils"}.get(tool[0], tool[0]))
        with open(out + ".tmp", "wb") as f:
            run(tool + [path], stdout=f)
        os.replace(out + ".tmp", out)
    return out


def module_closure(cache, idx, wanted, omit):
    """(ordered closure per wanted module, files, missing modules)."""
    need_tool("modinfo", "kmod")
    deps_of = {}
    files = {}

    def deps(name):
        if name not in deps_of:
            ko = plain_module(cache, idx[name])
            files[name] = ko
            out = subprocess.run(["modinfo", "-F", "depends", ko],
                                 capture_output=True, text=True, check=True)
            deps_of[name] = [d.replace("-", "_")
                             for d in out.stdout.strip().split(",") if d]
        return deps_of[name]

    closure = {}
    missing = []

    def visit(name, order, stack):
        if name in order:
            return True
        if name in omit or name not in idx:
            missing.append(name)
            return False
        if name in stack:
            raise LabError("module dependency cycle at " + name)
        ok = True
        for d in deps(name):
            ok = visit(d, order, stack + [name]) and ok
        order.append(name)
        return ok

    for w in wanted:
        order = []
        if visit(w, order, []):
            closure[w] = order
    return closure, files, sorted(set(missing))


def add_modules(cp, cache, idx, wanted, omit, args=None, extra=()):
    """Modules @wanted (listed in lib/modules/lab/wanted, loaded by the
    init) and @extra (only put there), with their dependencies."""
    closure, files, missing = module_closure(cache, idx,
                                             list(wanted) + list(extra), omit)
    used = set()
    for w, order in closure.items():
        cp.add_bytes("lib/modules/lab/%s.deps" % w,
                     ("\n".join(order) + "\n").encode())
        used.update(order)
    for m in sorted(used):
        cp.add_file("lib/modules/lab/%s.ko" % m, files[m], 0o644)
        if args and m in args:
            cp.add_bytes("lib/modules/lab/%s.args" % m, args[m].encode())
    cp.add_bytes("lib/modules/lab/wanted",
                 ("\n".join(wanted) + "\n").encode())
    return sorted(used), missing


def add_busybox(cp, busybox):
    cp.add_file("bin/busybox", busybox, 0o755)
    out = subprocess.run([busybox, "--list-full"], capture_output=True,
                         text=True, check=True)
    for applet in out.stdout.split():
        if applet != "bin/busybox":
            cp.symlink(applet, "/bin/busybox")
    cp.chardev("dev/console", 5, 1)
    cp.chardev("dev/null", 1, 3, 0o666)
    for d in ("proc", "sys", "tmp", "run", "root", "etc"):
        cp.mkdir(d)


# -------------------------------------------------- static project build
def parent_lib_options(args, meson):
    """The library options (kvm-ioctls=auto, ...) of the parent build, so
    libraries disabled there stay disabled in the static build."""
    r = subprocess.run([meson, "introspect", "--buildoptions",
                        args.builddir], capture_output=True, text=True)
    if r.returncode != 0:
        return []
    return ["%s=%s" % (o["name"], o["value"]) for o in json.loads(r.stdout)
            if o["name"] in LIB_OPTIONS]


def static_build(args, cache):
    """Configure (once) and build the project statically; returns the dir
    and the list of kvm-suite tests (dicts from meson introspect)."""
    sdir = os.path.join(cache, "static")
    meson = args.meson or shutil.which("meson")
    if not meson:
        raise LabError("meson not found for the static build")
    opts = ["-Ddefault_library=static", "-Dprefer_static=true",
            "-Dc_link_args=-static", "-Dfuzz=disabled", "-Dbenchmarks=false",
            "-Dexamples=true", "-Dtests=enabled", "-Dlab=enabled",
            "-Db_sanitize=none", "--buildtype=debugoptimized"]
    for o in (args.lib_options or parent_lib_options(args, meson)):
        if o and o.split("=")[0] not in LAUNCHER_LIBS:
            opts.append("-D" + o)
    # cvmm is built on these: they are always on in the lab's build.
    opts += ["-D%s=enabled" % o for o in LAUNCHER_LIBS]
    optfile = os.path.join(cache, "static-options")
    old = open(optfile).read() if os.path.exists(optfile) else None
    logf = os.path.join(cache, "static-build.log")
    with open(logf, "w") as lf:
        if not os.path.exists(os.path.join(sdir, "build.ninja")):
            shutil.rmtree(sdir, ignore_errors=True)
            r = subprocess.run([meson, "setup", sdir, args.srcdir] + opts,
                               stdout=lf, stderr=subprocess.STDOUT)
        elif old != " ".join(opts):
            r = subprocess.run([meson, "setup", "--reconfigure", sdir,
                                args.srcdir] + opts,
                               stdout=lf, stderr=subprocess.STDOUT)
        else:
            r = subprocess.CompletedProcess([], 0)
        if r.returncode != 0:
            log("static build: meson setup failed, see " + logf)
            return sdir, [], False
        with open(optfile, "w") as f:
            f.write(" ".join(opts))
        jobs = os.environ.get("LAB_BUILD_JOBS", "2")
        r = subprocess.run([meson, "compile", "-C", sdir, "-j", jobs],
                           stdout=lf, stderr=subprocess.STDOUT)
        ok = r.returncode == 0
        if not ok:
            # Build what still builds; the missing pieces fail their checks.
            subprocess.run(["ninja", "-C", sdir, "-k", "0", "-j", jobs],
                           stdout=lf, stderr=subprocess.STDOUT)
            log("static build had errors, see " + logf)
    out = subprocess.run([meson, "introspect", "--tests", sdir],
                         capture_output=True, text=True)
    tests = []
    if out.returncode == 0:
        for t in json.loads(out.stdout):
            suites = [s.split(":")[-1] for s in t.get("suite", [])]
            if "kvm" in suites:
                tests.append(t)
    return sdir, tests, ok


def up_to_date(sdir, path, static_ok):
    """False when `path` (a target of the static build) exists but did not
    rebuild after a source change: a stale binary must not be tested."""
    if not os.path.isfile(path):
        return False
    if static_ok:
        return True
    rel = os.path.relpath(path, sdir)
    r = subprocess.run(["ninja", "-C", sdir, "-n", rel],
                       capture_output=True, text=True)
    return r.returncode == 0 and "no work to do" in r.stdout


def elf_interpreter(path):
    """The PT_INTERP of an ELF64 executable (None when static or no ELF)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if data[:5] != b"\x7fELF\x02":
        return None
    phoff = int.from_bytes(data[32:40], "little")
    phentsize = int.from_bytes(data[54:56], "little")
    phnum = int.from_bytes(data[56:58], "little")
    for i in range(phnum):
        ph = data[phoff + i * phentsize:phoff + (i + 1) * phentsize]
        if len(ph) >= 40 and int.from_bytes(ph[0:4], "little") == 3:
            off = int.from_bytes(ph[8:16], "little")
            size = int.from_bytes(ph[32:40], "little")
            return data[off:off + size].rstrip(b"\0").decode(errors="replace")
    return None


def add_vfio_edu(cp, sdir, static_ok):
    """libvfio's program against edu (tests/vfio/vfio-edu.c), for the
    vfio-edu check; without it that check fails, saying so."""
    prog = os.path.join(sdir, "tests", "vfio", "vfio-edu")
    if up_to_date(sdir, prog, static_ok):
        cp.add_file("lab/bin/vfio-edu", prog, 0o755)


def kvm_test_script(cp, t, done_paths, fresh, sdir):
    """Put a kvm-suite test into the initramfs: its executable under
    /lab/kvm-tests/bin, any file its arguments or environment name at the
    same absolute path, and a script that runs it like meson would.  A test
    that did not build gets a script that fails and says so."""
    cmd = t["cmd"]
    exe = cmd[0]
    name = re.sub(r"[^A-Za-z0-9_.+-]", "_", t["name"])
    why = None
    if not fresh:
        why = "did not build (see static-build.log in the lab cache)"
    elif elf_interpreter(exe):
        why = ("is dynamically linked (%s); the lab runs only static"
               " programs" % elf_interpreter(exe))
    if why:
        cp.add_bytes("lab/kvm-tests/%s.sh" % name, (
            "#!/bin/sh\necho %s\nexit 1\n" % shlex.quote(
                "%s %s" % (name, why))).encode(), 0o755)
        return True
    cp.add_file("lab/kvm-tests/bin/" + name, exe, 0o755)
    # meson runs a test in its workdir, by default the build root.
    wd = t.get("workdir") or sdir
    extra = list(cmd[1:]) + list((t.get("env") or {}).values())
    for a in extra:
        for p in re.split(r"[:=]", str(a)):
            if p and not p.startswith("/"):
                p = os.path.join(wd, p)
            if os.path.isfile(p) and p not in done_paths:
                done_paths.add(p)
                cp.add_file(p, p)
    lines = ["#!/bin/sh",
             "mkdir -p %s && cd %s" % (shlex.quote(wd), shlex.quote(wd))]
    for k, v in sorted((t.get("env") or {}).items()):
        lines.append("export %s=%s" % (k, shlex.quote(str(v))))
    cap = int(os.environ.get("LAB_KVM_TEST_TIMEOUT", "120"))
    timeout = int(t.get("timeout") or 30)
    if timeout <= 0 or timeout > cap:
        timeout = cap
    lines.append("exec timeout %d /lab/kvm-tests/bin/%s %s" % (
        timeout, name, " ".join(shlex.quote(str(a)) for a in cmd[1:])))
    cp.add_bytes("lab/kvm-tests/%s.sh" % name,
                 ("\n".join(lines) + "\n").encode(), 0o755)
    return True


# Firmware QEMU needs for -M pc and -M microvm with -kernel (looked up in
# these folders of the host, copied into /lab/qemu/firmware for -L).
QEMU_FIRMWARE = ["bios-256k.bin", "linuxboot_dma.bin", "kvmvapic.bin",
                 "qboot.rom", "bios-microvm.bin", "pvh.bin"]
QEMU_FIRMWARE_DIRS = ["/usr/share/qemu", "/usr/share/seabios"]


def vmlinux_of(cache, vmlinuz):
    """The ELF vmlinux inside a bzImage (its XZ payload), cached: cvmm boots
    it through its PVH note, without the decompressor."""
    import lzma
    out = os.path.join(cache, "vmlinux-" + os.path.basename(vmlinuz))
    if os.path.exists(out):
        with open(out, "rb") as f:
            return f.read()
    with open(vmlinuz, "rb") as f:
        d = f.read()
    start = ((d[0x1f1] or 4) + 1) * 512 + int.from_bytes(d[0x248:0x24c],
                                                        "little")
    if d[start:start + 6] != b"\xfd7zXZ\x00":
        raise LabError("%s: the payload is not XZ" % vmlinuz)
    v = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(d[start:])
    write_if_changed(out, v)
    return v


def add_libraries(cp, binary):
    """The shared libraries `ldd` lists for `binary` into the image `cp`,
    each at its own path and once per image (QEMU, its daemons and the
    dynamic cvmm share most of them)."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True,
                         check=True)
    added = cp.__dict__.setdefault("libraries_added", set())
    for line in out.stdout.splitlines():
        m = re.search(r"(/\S+)", line.split("=>")[-1])
        if not m:
            continue
        lib = os.path.normpath(m.group(1))
        if lib not in added and os.path.isfile(lib):
            added.add(lib)
            cp.add_file(lib, os.path.realpath(lib), 0o755)


def add_qemu(cp):
    """QEMU as a peer in the lab, for the boot benchmark (want_qemu_peer):
    the host's qemu-system-x86_64 at /lab/qemu/, the shared libraries `ldd`
    lists at their own paths, and its firmware in /lab/qemu/firmware."""
    qemu = shutil.which(os.environ.get("LAB_QEMU", "qemu-system-x86_64"))
    if not qemu:
        raise LabError("LAB_BENCH_QEMU: no qemu-system-x86_64 on the host")
    cp.add_file("lab/qemu/qemu-system-x86_64", qemu, 0o755)
    add_libraries(cp, qemu)
    for fw in QEMU_FIRMWARE:
        for d in QEMU_FIRMWARE_DIRS:
            f = os.path.join(d, fw)
            if os.path.isfile(f):
                cp.add_file("lab/qemu/firmware/" + fw, os.path.realpath(f),
                            0o644)
                break
        else:
            log("WARNING: LAB_BENCH_QEMU: no %s on the host" % fw)


def add_qemu_storage_daemon(cp):
    """QEMU's qemu-storage-daemon (Debian qemu-system-common) at
    /lab/bin/, with the shared libraries `ldd` lists at their own paths:
    the vhost-user-blk backend of guest-vhost-user-qsd.  Left out (the
    check then says so) when the host has none."""
    qsd = shutil.which("qemu-storage-daemon")
    if not qsd:
        log("WARNING: no qemu-storage-daemon on the host (qemu-system-common)")
        return
    cp.add_file("lab/bin/qemu-storage-daemon", qsd, 0o755)
    add_libraries(cp, qsd)


def add_virtiofsd(cp):
    """QEMU's C virtiofsd (Debian qemu-system-common,
    /usr/lib/qemu/virtiofsd) at /lab/bin/, with the shared libraries `ldd`
    lists at their own paths: the vhost-user-fs backend of guest-virtiofs.
    Left out (the check then says so) when the host has none."""
    vfsd = os.environ.get("LAB_VIRTIOFSD", "/usr/lib/qemu/virtiofsd")
    if not os.path.isfile(vfsd):
        log("WARNING: no %s on the host (qemu-system-common)" % vfsd)
        return
    cp.add_file("lab/bin/virtiofsd", vfsd, 0o755)
    add_libraries(cp, vfsd)


def add_dynamic_cvmm(cp, builddir):
    """guest-net-user: cvmm's user networking dlopens libslirp.so.0, which
    the static cvmm of the other checks cannot load reliably (a second libc
    would come with it).  The parent build's dynamically linked cvmm goes in
    at its own path with the libraries `ldd` lists for it and for libslirp
    (at their own paths, as add_qemu does), behind /lab/bin/cvmm-dyn.  Left
    out (the check then says so) without libslirp.so.0 on the host."""
    cvmm = os.path.join(builddir, "examples", "vmm", "cvmm")
    slirp = [os.path.join(d, "libslirp.so.0") for d in
             ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu",
              "/usr/lib64", "/usr/lib")]
    slirp = [f for f in slirp if os.path.isfile(f)]
    if not os.path.isfile(cvmm) or not slirp:
        log("WARNING: no dynamically linked cvmm or libslirp.so.0 for "
            "guest-net-user")
        return
    cvmm = os.path.realpath(cvmm)
    cp.add_file(cvmm, cvmm, 0o755)
    cp.add_file(slirp[0], os.path.realpath(slirp[0]), 0o755)
    for binary in (cvmm, slirp[0]):
        add_libraries(cp, binary)
    # $ORIGIN in its RPATH finds the project's libraries next to the real
    # file: a script, not a symlink, runs it.
    cp.add_bytes("lab/bin/cvmm-dyn", ("#!/bin/sh\nexec %s \"$@\"\n"
                                      % shlex.quote(cvmm)).encode(), 0o755)


# --------------------------------------------------------------- images
def resolve_packages(cache):
    """(kernel package, its version, busybox-static version) from apt,
    remembered for an hour (apt-cache takes seconds; LAB_APT_REFRESH=1 asks
    again at once)."""
    memo = os.path.join(cache, "apt-resolved.json")
    key = os.environ.get("LAB_KERNEL_PKG", "")
    try:
        with open(memo) as f:
            m = json.load(f)
        if (m["key"] == key and time.time() - m["time"] < 3600
                and not os.environ.get("LAB_APT_REFRESH")):
            return m["kpkg"], m["kver"], m["bbver"]
    except (OSError, ValueError, KeyError):
        pass
    kpkg, kver = resolve_kernel_pkg()
    bbver = apt_version("busybox-static")
    with open(memo, "w") as f:
        json.dump({"key": key, "time": time.time(), "kpkg": kpkg,
                   "kver": kver, "bbver": bbver}, f)
    return kpkg, kver, bbver


def want_qemu_peer(names=()):
    """QEMU goes into the lab image (with the kernel's vmlinux) for the boot
    benchmark's comparison when cvmm-bench runs, unless LAB_BENCH_QEMU=0;
    LAB_BENCH_QEMU=1 puts it in for any run (e.g. `run`)."""
    v = os.environ.get("LAB_BENCH_QEMU", "")
    if v:
        return v != "0"
    # qemu-vhost-user-blk: QEMU as the vhost-user frontend of our daemon;
    # net-tap-qemu: the same transfers under QEMU.
    return ("cvmm-bench" in names or "qemu-vhost-user-blk" in names
            or "net-tap-qemu" in names)


def build_images(args, qemu_peer=False):
    """Returns a dict with paths of the kernel and the lab initramfs.  The
    cache is locked meanwhile (a lab test and `tests/lab/run` may build at
    the same time)."""
    cache = os.path.join(args.builddir, "tests", "lab", "cache")
    os.makedirs(cache, exist_ok=True)
    with open(os.path.join(cache, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return build_images_locked(args, cache, qemu_peer)


def build_images_locked(args, cache, qemu_peer):
    t0 = time.monotonic()
    kpkg, kver, bbver = resolve_packages(cache)
    kroot = unpack_deb(cache, fetch_deb(cache, kpkg, kver))
    bbroot = unpack_deb(cache, fetch_deb(cache, "busybox-static", bbver))
    busybox = os.path.join(bbroot, "bin", "busybox")
    kernels = [f for f in os.listdir(os.path.join(kroot, "boot"))
               if f.startswith("vmlinuz-")]
    if not kernels:
        raise LabError("no vmlinuz in " + kpkg)
    vmlinuz = os.path.join(kroot, "boot", kernels[0])
    release = kernels[0][len("vmlinuz-"):]
    moddir = os.path.join(kroot, "lib", "modules", release)
    idx = module_index(moddir)
    omit = set(m.replace("-", "_") for m in
               os.environ.get("LAB_OMIT_MODULES", "").split(",") if m)
    t_fetch = time.monotonic()

    sdir, tests, static_ok = static_build(args, cache)
    t_static = time.monotonic()

    # The nested guests' initramfs.
    g = Cpio()
    add_busybox(g, busybox)
    g.add_file("init", os.path.join(HERE, "guest-init.sh"), 0o755)
    gdir = os.path.join(HERE, "guest-checks")
    for f in sorted(os.listdir(gdir)):
        g.add_file("checks/" + f, os.path.join(gdir, f), 0o755)
    vsock_tool = os.path.join(sdir, "tests", "lab", "vsock-tool")
    if up_to_date(sdir, vsock_tool, static_ok):
        g.add_file("bin/vsock-tool", vsock_tool, 0o755)
    edu_guest = os.path.join(sdir, "tests", "vfio", "edu-guest")
    if up_to_date(sdir, edu_guest, static_ok):
        g.add_file("bin/edu-guest", edu_guest, 0o755)
    gmods, gmissing = add_modules(g, cache, idx, GUEST_MODULES, omit,
                                  extra=GUEST_EXTRA_MODULES)
    guest_cpio = g.data()

    # The lab initramfs.
    c = Cpio()
    add_busybox(c, busybox)
    c.add_file("init", os.path.join(HERE, "lab-init.sh"), 0o755)
    lmods, lmissing = add_modules(c, cache, idx, LAB_MODULES, omit)
    c.add_file("lab/guest/vmlinuz", vmlinuz, 0o644)
    c.add_bytes("lab/guest/initrd.cpio", guest_cpio)
    launcher = os.path.join(sdir, "examples", "vmm", "cvmm")
    if up_to_date(sdir, launcher, static_ok):
        c.add_file("lab/bin/cvmm", launcher, 0o755)
    echo = os.path.join(sdir, "tests", "lab", "unix-echo")
    if up_to_date(sdir, echo, static_ok):
        c.add_file("lab/bin/unix-echo", echo, 0o755)
    add_vfio_edu(c, sdir, static_ok)
    vub = os.path.join(sdir, "examples", "vhost-user-blk", "vhost-user-blk")
    if up_to_date(sdir, vub, static_ok):
        c.add_file("lab/bin/vhost-user-blk", vub, 0o755)
    add_qemu_storage_daemon(c)
    add_virtiofsd(c)
    add_dynamic_cvmm(c, args.builddir)
    if up_to_date(sdir, vsock_tool, static_ok):
        c.add_file("lab/bin/vsock-tool", vsock_tool, 0o755)
    c.mkdir("lab/kvm-tests")
    done = set()
    ktests = [t["name"] for t in tests if kvm_test_script(
        c, t, done, up_to_date(sdir, t["cmd"][0], static_ok), sdir)]
    if qemu_peer:
        add_qemu(c)
        c.add_bytes("lab/guest/vmlinux", vmlinux_of(cache, vmlinuz), 0o644)
    img = os.path.join(cache, "images")
    os.makedirs(img, exist_ok=True)
    lab_cpio = os.path.join(img, "lab.cpio")
    write_if_changed(lab_cpio, c.data())
    # The nested guests' initramfs on its own too: tools/boot-guest boots
    # it with cvmm directly on a host with vmx/svm.
    guest_initrd = os.path.join(img, "guest.cpio")
    write_if_changed(guest_initrd, guest_cpio)
    manifest = {
        "kernel_package": kpkg, "kernel_version": kver, "release": release,
        "busybox_version": bbver, "vmlinuz": vmlinuz, "initrd": lab_cpio,
        "guest_initrd": guest_initrd,
        "lab_modules": lmods, "lab_modules_missing": lmissing,
        "guest_modules": gmods, "guest_modules_missing": gmissing,
        "kvm_tests": ktests, "static_build_ok": static_ok,
        "launcher": up_to_date(sdir, launcher, static_ok),
        "seconds": {"fetch": round(t_fetch - t0, 1),
                    "static_build": round(t_static - t_fetch, 1),
                    "initramfs": round(time.monotonic() - t_static, 1)},
    }
    with open(os.path.join(img, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    log("images: kernel %s (%s), busybox %s, %d kvm tests, initramfs %.1f MiB"
        " [fetch %.1f s, static build %.1f s, initramfs %.1f s]" % (
            release, kver, bbver, len(ktests),
            os.path.getsize(lab_cpio) / 1048576.0,
            *manifest["seconds"].values()))
    for what, miss in (("lab", lmissing), ("guest", gmissing)):
        if miss:
            log("WARNING: %s modules missing from the images: %s"
                % (what, " ".join(miss)))
    return manifest


# ----------------------------------------------------------------- qemu
def host_has_virt():
    try:
        with open("/proc/cpuinfo") as f:
            flags = re.search(r"^flags\s*:(.*)$", f.read(), re.M)
    except OSError:
        return False
    if not flags or not ({"vmx", "svm"} & set(flags.group(1).split())):
        return False
    return os.access("/dev/kvm", os.R_OK | os.W_OK)


def choose_accel(args):
    accel = args.accel or os.environ.get("LAB_ACCEL") or "auto"
    if accel == "auto":
        accel = "kvm" if host_has_virt() else "tcg"
    if accel not in ("tcg", "kvm"):
        raise LabError("unknown accelerator " + accel)
    return accel


def qemu_cmd(accel, kernel, initrd, interactive=False):
    qemu = os.environ.get("LAB_QEMU", "qemu-system-x86_64")
    need_tool(qemu, "qemu-system-x86")
    if accel == "kvm":
        # Direct mode: the host has vmx/svm, the lab VM runs under the
        # host's KVM and its guests under nested virtualization.
        cpu = ["-accel", "kvm", "-cpu", "host"]
    else:
        cpu = ["-accel", "tcg", "-cpu", "EPYC,+svm,+npt"]
    cmd = [qemu] + cpu + [
        "-machine", "q35,kernel-irqchip=split",
        "-smp", os.environ.get("LAB_SMP", "1"),
        "-m", os.environ.get("LAB_MEM", "2048"), "-nodefaults",
        "-no-reboot", "-device", "intel-iommu,intremap=on",
        "-device", "edu", "-kernel", kernel, "-initrd", initrd,
        "-append", LAB_CMDLINE]
    if interactive == "raw":
        # The terminal straight to the serial console, no QEMU escape or
        # signal keys: every byte (Ctrl-A x for cvmm, Ctrl-C) reaches the
        # program in the lab.
        cmd += ["-display", "none", "-monitor", "none",
                "-chardev", "stdio,id=con0,signal=off",
                "-serial", "chardev:con0"]
    elif interactive:
        # Serial console and QEMU monitor muxed on the terminal (Ctrl-A x).
        cmd += ["-display", "none", "-serial", "mon:stdio"]
    else:
        cmd += ["-display", "none", "-monitor", "none", "-serial", "stdio"]
    return cmd


def make_initrd(manifest, plan, cmd_script=None, bring=()):
    """The lab initramfs plus the run's plan, its command and the host
    files to bring in (at the same absolute path)."""
    p = Cpio()
    p.add_bytes("lab/plan", plan.encode())
    if cmd_script is not None:
        p.add_bytes("lab/cmd", cmd_script.encode(), 0o755)
    for f in bring:
        # Under /lab/host: the lab's /init copies them to their own path
        # (after mounting /tmp, which would hide them there).
        p.add_file("lab/host" + os.path.abspath(f), f)
    fd, path = tempfile.mkstemp(prefix="lab-initrd-", suffix=".cpio")
    with os.fdopen(fd, "wb") as out, open(manifest["initrd"], "rb") as base:
        shutil.copyfileobj(base, out)
        out.write(p.data())
    return path


class Terminated(Exception):
    pass


def on_sigterm(signum, frame):
    raise Terminated()


def die_with_parent():
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_qemu(cmd, timeout, logpath, echo=False, on_line=None,
             should_stop=None):
    """Runs QEMU, reading the serial console line by line until it exits
    or the timeout passes.  Returns (exit status or None, timed_out)."""
    start = time.monotonic()
    # QEMU stays in our process group (meson kills a timed-out test's whole
    # group) and dies with us (PR_SET_PDEATHSIG), so it is never orphaned.
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=die_with_parent)
    buf = b""
    timed_out = False
    try:
        with open(logpath, "w") as lg:
            lg.write("# " + " ".join(shlex.quote(c) for c in cmd) + "\n")
            while True:
                left = timeout - (time.monotonic() - start)
                if left <= 0:
                    timed_out = True
                    break
                if should_stop and should_stop(time.monotonic() - start,
                                               proc.pid):
                    break
                r, _, _ = select.select([proc.stdout], [], [], min(left, 1))
                if not r:
                    continue
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    raw, buf = buf.split(b"\n", 1)
                    line = raw.decode("utf-8", "replace").rstrip("\r")
                    now = time.monotonic() - start
                    lg.write("[%7.2f] %s\n" % (now, line))
                    lg.flush()
                    if echo:
                        print(line, flush=True)
                    if on_line:
                        on_line(line, now)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()
    return (None if timed_out else proc.returncode), timed_out


# -------------------------------------------------------------- results
# The lab's console protocol (lab-init.sh), one marker at the start of a
# line; every other line is output of the check that is running.
MARK = re.compile(r"^@@LAB-(BEGIN|END|SUBBEGIN|SUB|DONE|EXIT)\b ?(.*)$")

# The checks of one lab boot, in the order they run (lab-init.sh has a
# check_<name> function for each, '-' spelled '_').
CHECKS = ["up", "kvm", "vfio", "vfio-edu", "kvm-suite", "guest-up", "guest-checks",
          "guest-serial-irq", "guest-pci", "guest-rtc", "guest-i8042",
          "guest-cpus-1", "guest-memory", "guest-acpi", "guest-rng",
          "guest-blk-read", "guest-blk-write", "guest-blk-readonly",
          "guest-blk-discard", "guest-channel", "guest-vhost-user",
          "guest-vhost-user-qsd", "guest-virtiofs", "guest-vhost-user-bench",
          "guest-reboot",
          "guest-poweroff", "guest-cpus-4", "guest-serial-input",
          "guest-hvc0", "guest-panic", "guest-vfio", "guest-acpi-off",
          "transport-pci", "transport-mmio", "guest-irqfd", "guest-intx",
          "guest-msix-smp", "guest-net-tap", "net-tap-qemu", "guest-net-user",
          "guest-packed",
          "guest-vsock", "vsock-guest-to-host", "vsock-host-to-guest",
          "vsock-refused", "qemu-vhost-user-blk",
          "guest-vhost-net", "guest-vhost-vsock",
          "cvmm-bench"]

# Host-side budget of one check (wall clock, seconds; scaled by
# $LAB_CHECK_TIMEOUT_SCALE).  A check that overruns it has frozen the lab:
# QEMU is killed and the lab boots again for the checks left.  For
# kvm-suite the budget applies to each program (SUB_BUDGET) and to the time
# between them; inside the lab each program also runs under `timeout`
# ($LAB_KVM_TEST_TIMEOUT, default 120 s, or its meson timeout if smaller).
CHECK_BUDGET = {"kvm-suite": 90, "guest-up": 300, "guest-poweroff": 300,
                "guest-hvc0": 300, "guest-intx": 300,
                "guest-msix-smp": 300,
                "guest-panic": 300, "guest-acpi-off": 300,
                "guest-vfio": 300, "guest-net-tap": 300,
                "guest-vsock": 300, "qemu-vhost-user-blk": 300,
                "guest-vhost-net": 300, "guest-vhost-vsock": 300,
                "guest-packed": 300,
                "guest-net-user": 300, "net-tap-qemu": 300,
                "cvmm-bench": 900}
CHECK_BUDGET_DEFAULT = 90
# Checks that print a line at least every 30 s while their nested guest
# runs (net_progress in lab-init.sh): a longer silence means the lab froze
# even while QEMU burns CPU (seen 2026-12-03 in a 64 MiB tap transfer:
# QEMU at 100% of a core, the lab's own 30 s lines gone for minutes).
SILENCE_BUDGET = {"guest-net-tap": 100, "guest-vhost-net": 100,
                  "guest-net-user": 100, "net-tap-qemu": 100}
SUB_BUDGET = 150


def check_budget(name, sub=None):
    scale = float(os.environ.get("LAB_CHECK_TIMEOUT_SCALE", "1"))
    if sub:
        return SUB_BUDGET * scale
    return CHECK_BUDGET.get(name, CHECK_BUDGET_DEFAULT) * scale


# Checks that make a nested boot (cvmm) that others read.
BOOT_CHECKS = {"guest-up", "guest-poweroff", "guest-panic", "guest-hvc0",
               "guest-acpi-off", "guest-intx", "guest-msix-smp",
               "guest-vfio", "guest-net-tap", "guest-vsock",
               "guest-vhost-net", "guest-vhost-vsock", "guest-packed",
               "guest-net-user"}
# Checks that read the boot of guest-poweroff (the others read guest-up's).
POWEROFF_READERS = {"guest-cpus-4", "guest-serial-input"}
# Checks that read other boots.
READS_BOOT = {"transport-mmio": "guest-hvc0", "transport-pci": "guest-up"}
READS_BOOT.update({"vsock-guest-to-host": "guest-vsock",
                   "vsock-host-to-guest": "guest-vsock",
                   "vsock-refused": "guest-vsock"})


def check_needs(name):
    """Checks that must run before `name` in the same boot: the guest-*
    checks read the run of a nested guest, which guest-up (or
    guest-poweroff) makes."""
    if name in POWEROFF_READERS:
        return ["guest-poweroff"]
    if name in READS_BOOT:
        return [READS_BOOT[name]]
    if name.startswith("guest-") and name not in BOOT_CHECKS:
        return ["guest-up"]
    return []


# Checks run only when named ($LAB_ONLY / --only), not in the default run:
# net-tap-qemu (guest-net-tap's transfers again under QEMU, a figure) adds
# about 100 s to a run that must fit in LAB_TIMEOUT.  (guest-net-tap was
# one while a lab run froze in it, 2026-12-02: it now reports progress as
# it goes and cvmm ends within its --timeout, see check_guest_net_tap and
# cvmm's watchdog.)
OPT_IN_CHECKS = {"net-tap-qemu"}


def select_checks(order, only):
    """The checks to run, in `order`, for a selection `only` (a list of
    names; empty means all but OPT_IN_CHECKS), with the checks they need;
    and the kvm-suite programs selected as "kvm-suite/<program>" (empty:
    all of them)."""
    if not only:
        return [c for c in order if c not in OPT_IN_CHECKS], []
    want = set()
    programs = []
    for item in only:
        name, _, prog = item.partition("/")
        if name not in order:
            raise LabError("no lab check named %r; the checks are: %s"
                           % (name, " ".join(order)))
        if prog:
            if name != "kvm-suite":
                raise LabError("%s: only kvm-suite has programs to select"
                               % item)
            programs.append(prog)
        want.add(name)
        want.update(check_needs(name))
    return [c for c in order if c in want], programs


@dataclass
class Sub:
    """One sub-result of a check: a kvm program, a nested-guest check."""
    name: str
    status: str  # PASS or FAIL
    lab_ms: int = 0


@dataclass
class Check:
    name: str
    status: str = "NOT RUN"  # INCOMPLETE once begun, then PASS or FAIL
    output: list = field(default_factory=list)
    subs: list = field(default_factory=list)
    lab_ms: int = 0  # on the lab's clock
    host_s: float = 0.0  # host wall clock

    def pending(self):
        return self.status in ("NOT RUN", "INCOMPLETE")


@dataclass
class LabRun:
    """What one lab run learned, over all its boots."""
    checks: dict  # name -> Check, in run order
    kvm_only: list = field(default_factory=list)  # kvm programs selected
    accel: str = ""
    error: str = ""  # the lab could not run, or stopped early
    boots: int = 0
    console_logs: list = field(default_factory=list)
    tail: list = field(default_factory=list)  # last console lines
    froze: dict = field(default_factory=dict)  # check/program: freezes
    images_s: float = 0.0
    first_check_s: float = None  # lab boot to the first check, first boot
    qemu_s: float = 0.0
    total_s: float = 0.0

    @classmethod
    def of(cls, names, kvm_only=()):
        return cls({n: Check(n) for n in names}, list(kvm_only))

    def pending(self):
        return [n for n, c in self.checks.items() if c.pending()]


@dataclass
class Console:
    """Where one boot of the lab VM is, from its console."""
    cur: str = None  # the check running now
    sub: str = None  # its program running now (kvm-suite)
    t_begin: float = 0.0  # when `cur` began (s since QEMU started)
    t_last: float = 0.0  # its last sign of progress
    done: bool = False  # @@LAB-DONE seen
    frozen: bool = False  # `cur` overran its budget, or QEMU stalled
    stalled_s: float = 0.0  # frozen: QEMU had used no CPU for this long
    t_line: float = 0.0  # the last console line of `cur`
    silent_s: float = 0.0  # frozen: no console line for this long
    cpu: float = -1.0  # QEMU's CPU seconds when last read
    t_cpu: float = 0.0  # when they last grew

    def overran(self, now, pid=None):
        """True (and remembered) when the running check overran its
        budget, went silent past its SILENCE_BUDGET, or when QEMU used
        less than 10 ms of CPU in $LAB_STALL_S seconds (default 60; 0
        turns this off) while a check ran: under TCG a live lab VM
        always burns CPU (a nested guest, a check's commands, timer
        ticks), and the lab's freezes (tests/lab/README.md, Hangs: the
        TCG vCPU thread waits for an event that never comes) show as a
        QEMU with a frozen CPU count; catching them this way costs a
        minute instead of the budget."""
        if self.cur and now - self.t_last > check_budget(self.cur, self.sub):
            self.frozen = True
        quiet = SILENCE_BUDGET.get(self.cur)
        if quiet and now - max(self.t_line, self.t_begin) > quiet \
                and not self.frozen:
            self.frozen = True  # it promised a line every 30 s
            self.silent_s = now - max(self.t_line, self.t_begin)
        cpu = qemu_cpu_seconds(pid)
        if cpu is not None and (self.cpu < 0 or cpu - self.cpu > 0.01):
            self.cpu, self.t_cpu = cpu, now
        stall = float(os.environ.get("LAB_STALL_S", "60"))
        if self.cur and cpu is not None and stall > 0 and \
                now - max(self.t_cpu, self.t_begin) > stall:
            self.frozen = True
            self.stalled_s = now - self.t_cpu
        return self.frozen


def qemu_cpu_seconds(pid):
    """CPU seconds process `pid` has run, all its threads (the scheduler's
    nanosecond count, /proc/PID/task/*/schedstat), or None when it cannot
    be read."""
    if pid is None:
        return None
    total = 0
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass  # a thread that just ended
    except OSError:
        return None
    return total / 1e9


def to_int(s):
    return int(s) if s.isdigit() else 0


def read_line(run, con, line, now):
    """Takes one console line of a boot into `run` and `con`."""
    run.tail = (run.tail + [line])[-25:]
    con.t_line = now
    m = MARK.match(line)
    if not m:
        if con.cur:
            run.checks[con.cur].output.append(line)
        return
    kind, rest = m.group(1), m.group(2).split()
    if kind == "DONE":
        con.done = True
        return
    c = run.checks.get(rest[0]) if rest else None
    if c is None:
        return
    if kind == "BEGIN":
        con.cur, con.sub = c.name, None
        con.t_begin = con.t_last = now
        c.status = "INCOMPLETE"
        if run.first_check_s is None:
            run.first_check_s = round(now, 1)
    elif kind == "SUBBEGIN" and len(rest) >= 2:
        con.sub, con.t_last = rest[1], now
    elif kind == "SUB" and len(rest) >= 4:
        # A check run again after a freeze reports its subs again.
        c.subs = [s for s in c.subs if s.name != rest[1]]
        c.subs.append(Sub(rest[1], "PASS" if rest[2] == "PASS" else "FAIL",
                          to_int(rest[3])))
        con.sub, con.t_last = None, now
    elif kind == "END" and len(rest) >= 3:
        ok = rest[1] == "PASS" and all(s.status == "PASS" for s in c.subs)
        c.status = "PASS" if ok else "FAIL"
        if rest[1] == "SKIP" and not c.subs:
            c.status = "SKIP"
        c.lab_ms += to_int(rest[2])
        c.host_s = round(c.host_s + now - con.t_begin, 2)
        con.cur = con.sub = None
        log("check %-14s %s  %6.1f s" % (c.name, c.status, c.host_s))


def after_freeze(run, con, now):
    """The lab froze in check con.cur (in its program con.sub, if any).
    Its first $LAB_FREEZE_RETRIES freezes (default 2) leave it pending, to
    run again in the next boot, and say so; one more fails it."""
    c = run.checks[con.cur]
    budget = check_budget(con.cur, con.sub)
    why = "no result after %d s" % budget
    if con.stalled_s:
        why = "QEMU used no CPU for %d s" % con.stalled_s
    elif con.silent_s:
        why = "no console line for %d s" % con.silent_s
    c.host_s = round(c.host_s + now - con.t_begin, 2)
    what = con.cur + ("/" + con.sub if con.sub else "")
    run.froze[what] = run.froze.get(what, 0) + 1
    retries = int(os.environ.get("LAB_FREEZE_RETRIES", "2"))
    if run.froze[what] <= retries:
        # The lab VM itself can freeze (soft lockups of the lab kernel
        # under QEMU 7.2's TCG emulation of SVM), which is the lab's
        # failure, not the check's.
        c.output.append("(%s: %s, the lab froze (%d); booting again to"
                        " run it once more)" % (what, why, run.froze[what]))
        log("%s froze the lab (%s; freeze %d); booting again to run it"
            " once more" % (what, why, run.froze[what]))
        return
    if con.sub:
        # That program fails; the check goes on without it after a reboot.
        c.subs.append(Sub(con.sub, "FAIL", int(budget * 1000)))
        c.output.append("(%s froze the lab again: %s; the lab was"
                        " restarted)" % (what, why))
    else:
        c.status = "FAIL"
        c.output.append("(froze the lab again: %s; the lab was restarted"
                        " for the remaining checks)" % why)
    log("%s froze the lab %d times: FAIL; restarting it for: %s"
        % (what, run.froze[what], " ".join(run.pending()) or "nothing"))


def plan_text(run, host_time):
    """/lab/plan of the next boot: the checks still pending, and the kvm
    programs that already have a result (not run again)."""
    done = [s.name for s in run.checks["kvm-suite"].subs] \
        if "kvm-suite" in run.checks else []
    plan = "LAB_MODE=checks\nLAB_CHECKS=%s\nLAB_KVM_SKIP=%s\n" % (
        shlex.quote(" ".join(run.pending())), shlex.quote(" ".join(done)))
    if run.kvm_only:
        plan += "LAB_KVM_ONLY=%s\n" % shlex.quote(" ".join(run.kvm_only))
    # The host's time, for the nested guest's RTC check.
    plan += "LAB_HOST_TIME=%d\n" % int(host_time)
    for v in ("LAB_BENCH_MICROVM", "LAB_BENCH_MICROVM_CAP",
              "LAB_BENCH_QEMU_RUNS"):
        if os.environ.get(v):
            plan += "%s=%s\n" % (v, shlex.quote(os.environ[v]))
    if os.environ.get("LAB_GUEST_TIMEOUT"):
        plan += "LAB_GUEST_TIMEOUT=%d\n" % int(os.environ["LAB_GUEST_TIMEOUT"])
    return plan


def boot_once(args, run, manifest, logdir, left):
    """One boot of the lab VM running the pending checks; returns its
    Console, and whether it ran out of time."""
    run.boots += 1
    con = Console()
    logpath = os.path.join(logdir, "console-%s-%d.log" % (
        time.strftime("%Y%m%d-%H%M%S"), run.boots))
    run.console_logs.append(logpath)
    initrd = make_initrd(manifest, plan_text(run, time.time()))
    log("booting the lab (%s, %s) for: %s; console log %s" % (
        "TCG" if run.accel == "tcg" else "KVM, direct mode",
        manifest["release"], " ".join(run.pending()), logpath))
    try:
        _, timed_out = run_qemu(
            qemu_cmd(run.accel, manifest["vmlinuz"], initrd), left, logpath,
            echo=args.verbose,
            on_line=lambda line, now: read_line(run, con, line, now),
            should_stop=con.overran)
    finally:
        os.unlink(initrd)
    return con, timed_out


def boot(args, names, kvm_only=()):
    """Runs the checks `names`, booting the lab again after it froze (see
    after_freeze), within $LAB_TIMEOUT; returns the LabRun."""
    t0 = time.monotonic()
    run = LabRun.of(names, kvm_only)
    run.accel = choose_accel(args)
    qemu_cmd(run.accel, "", "")  # fails early and clearly without QEMU
    manifest = build_images(args, want_qemu_peer(names))
    t_img = time.monotonic()
    run.images_s = round(t_img - t0, 1)
    logdir = os.path.join(args.builddir, "tests", "lab", "logs")
    os.makedirs(logdir, exist_ok=True)
    total = float(os.environ.get("LAB_TIMEOUT", args.timeout))
    while run.pending():
        t_boot = time.monotonic()
        con, timed_out = boot_once(args, run, manifest, logdir,
                                   total - (t_boot - t_img))
        if con.done or not run.pending():
            break
        if con.frozen:
            after_freeze(run, con, time.monotonic() - t_boot)
            continue
        if timed_out:
            run.error = "the lab timed out after %d s (LAB_TIMEOUT)" % total
        else:
            run.error = "the lab stopped before finishing its checks"
        if con.cur:
            run.checks[con.cur].output.append("(interrupted: %s)" % run.error)
        break
    run.qemu_s = round(time.monotonic() - t_img, 1)
    run.total_s = round(time.monotonic() - t0, 1)
    if run.error:
        run.error += "; last lines of the console:\n" + "\n".join(
            "    " + t for t in run.tail if "TCG doesn't support" not in t)
    return run


# ----------------------------------------------------------- reporting
def timing_lines(run):
    t = ["timings: images %.1f s, QEMU %.1f s (%d boot%s, lab boot to first"
         " check %.1f s), total %.1f s, accel %s" % (
             run.images_s, run.qemu_s, run.boots,
             "" if run.boots == 1 else "s", run.first_check_s or 0,
             run.total_s, run.accel)]
    for c in run.checks.values():
        t.append("  %-16s %-10s %7.1f s" % (c.name, c.status, c.host_s))
        for s in c.subs:
            t.append("    %-30s %-4s %7.2f s" % (s.name, s.status,
                                                 s.lab_ms / 1000.0))
    return t


def tap_lines(run):
    """The run as TAP: for each check its output (as comments), one line
    per sub-result ("<check>/<sub>") and then the check's own line."""
    results = []
    for c in run.checks.values():
        notes = ["# %s | %s" % (c.name, line) for line in c.output]
        for s in c.subs:
            results.append((notes, s.status == "PASS",
                            "%s/%s" % (c.name, s.name),
                            "%.2f s in the lab" % (s.lab_ms / 1000.0)))
            notes = []
        if c.status in ("PASS", "FAIL"):
            note = "%.1f s, lab clock %.2f s" % (c.host_s, c.lab_ms / 1000.0)
        elif c.status == "SKIP":
            # TAP: "ok N - name # SKIP reason"; the reason is the check's
            # last output line.
            note = "SKIP " + (c.output[-1] if c.output else "skipped")
            notes = notes[:-1] if c.output else notes
        else:
            note = c.status.lower()
        results.append((notes, c.status in ("PASS", "SKIP"), c.name,
                        note))
    out = ["1..%d" % len(results)]
    if run.error:
        out += ["# LAB ERROR: " + line for line in run.error.split("\n")]
    for i, (notes, ok, name, note) in enumerate(results, 1):
        out += notes
        out.append("%s %d - %s # %s" % ("ok" if ok else "not ok", i, name,
                                        note))
    return out


def write_timings(labdir, run):
    """<builddir>/tests/lab/timings.txt: the table of the last lab run."""
    with open(os.path.join(labdir, "timings.txt"), "w") as f:
        f.write("lab run %s\n" % time.strftime("%Y-%m-%d %H:%M:%S"))
        f.write("\n".join(timing_lines(run)) + "\n")


# ---------------------------------------------------------- subcommands
def cmd_test(args):
    """The meson test of one lab boot: TAP on stdout (each check's output
    as TAP comments before its result), progress and timings on stderr."""
    signal.signal(signal.SIGTERM, on_sigterm)
    order = [c for c in args.checks.split(",") if c] or CHECKS
    only = args.only or os.environ.get("LAB_ONLY", "")
    try:
        names, kvm_only = select_checks(
            order, [c for c in re.split(r"[\s,]+", only) if c])
    except LabError as e:
        print("1..1\nnot ok 1 - selection %s # %s" % (only, e))
        return 0
    if names != order:
        log("running only: %s" % " ".join(names + ["kvm-suite/" + p
                                                    for p in kvm_only]))
    labdir = os.path.join(args.builddir, "tests", "lab")
    os.makedirs(labdir, exist_ok=True)
    # Only the report goes to stdout: whatever the tools the lab runs
    # print meanwhile (and -v's console echo) goes to stderr.
    sys.stdout.flush()
    tap_fd = os.dup(1)
    os.dup2(2, 1)
    try:
        run = boot(args, names, kvm_only)
    except (LabError, Terminated, subprocess.CalledProcessError) as e:
        run = LabRun.of(names, kvm_only)
        if isinstance(e, Terminated):
            run.error = "the lab run was terminated (meson test timeout?)"
        elif isinstance(e, subprocess.CalledProcessError):
            run.error = "command failed: %s" % e
        else:
            run.error = str(e)
    else:
        write_timings(labdir, run)
        log("\n".join(timing_lines(run)))
    # meson prints a failed TAP test's stderr, not its stdout: the output
    # of the checks that failed goes there too.
    for c in run.checks.values():
        if c.status != "PASS" and c.output:
            log("%s %s; its output:\n%s" % (c.name, c.status, "\n".join(
                "  | " + line for line in c.output)))
    if run.error:
        log("LAB ERROR: " + run.error)
    if run.console_logs:
        log("console logs: " + " ".join(run.console_logs))
    sys.stdout.flush()
    os.dup2(tap_fd, 1)
    os.close(tap_fd)
    print("\n".join(tap_lines(run)), flush=True)
    # As TAP has it, the verdict is in the ok / not ok lines (an exit status
    # would make meson report ERROR instead of the failed subtests).
    return 0


def cmd_build(args):
    try:
        m = build_images(args, want_qemu_peer())
    except LabError as e:
        log("LAB ERROR: " + str(e))
        return 1
    print(json.dumps(m, indent=1))
    return 0


def cmd_run(args):
    try:
        manifest = build_images(args, want_qemu_peer())
        accel = choose_accel(args)
    except LabError as e:
        log("LAB ERROR: " + str(e))
        return 1
    for f in args.bring:
        if not os.path.isfile(f):
            log("--bring %s: not a file" % f)
            return 2
    if args.shell:
        initrd = make_initrd(manifest, "LAB_MODE=shell\n", bring=args.bring)
        try:
            return subprocess.call(qemu_cmd(accel, manifest["vmlinuz"],
                                            initrd, interactive=True))
        finally:
            os.unlink(initrd)
    if not args.command:
        log("nothing to run: give -- <command> or --shell")
        return 2
    script = "#!/bin/sh\n" + " ".join(
        shlex.quote(a) for a in args.command) + "\n"
    if len(args.command) == 1:
        script = "#!/bin/sh\n" + args.command[0] + "\n"
    initrd = make_initrd(manifest, "LAB_MODE=cmd\n", script, args.bring)
    if args.interactive:
        # The command gets the terminal, every key of it: QEMU keeps no
        # escape of its own, so cvmm's Ctrl-A x reaches cvmm, and the lab
        # powers off when the command ends.
        try:
            return subprocess.call(qemu_cmd(accel, manifest["vmlinuz"],
                                            initrd, interactive="raw"))
        finally:
            os.unlink(initrd)
    exit_rc = {}

    def on_line(line, now):
        m = MARK.match(line)
        if m and m.group(1) == "EXIT":
            exit_rc["rc"] = to_int(m.group(2).split()[0]) \
                if m.group(2).split() else 1
        elif not m and "TCG doesn't support requested feature" not in line:
            print(line, flush=True)

    logdir = os.path.join(args.builddir, "tests", "lab", "logs")
    os.makedirs(logdir, exist_ok=True)
    logpath = os.path.join(logdir, "run-%s.log" % time.strftime(
        "%Y%m%d-%H%M%S"))
    t0 = time.monotonic()
    try:
        _, timed_out = run_qemu(qemu_cmd(accel, manifest["vmlinuz"], initrd),
                                float(os.environ.get("LAB_TIMEOUT",
                                                     args.timeout)),
                                logpath, on_line=on_line)
    finally:
        os.unlink(initrd)
    log("%.1f s; console log %s" % (time.monotonic() - t0, logpath))
    if timed_out:
        log("timed out")
        return 124
    if "rc" not in exit_rc:
        log("the command did not finish (no exit status from the lab)")
        return 1
    log("exit status %d" % exit_rc["rc"])
    return exit_rc["rc"]


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--builddir", default=os.environ.get("LAB_BUILDDIR"),
                    help="the meson build directory (cache lives inside)")
    ap.add_argument("--srcdir", default=os.path.dirname(os.path.dirname(HERE)))
    ap.add_argument("--meson", help="meson command for the static build")
    ap.add_argument("--lib-options", default="",
                    type=lambda v: [o for o in v.split(",") if o],
                    help="comma-separated lib=feature options mirrored into"
                    " the static build (default: those of --builddir)")
    ap.add_argument("--accel", choices=["auto", "tcg", "kvm"],
                    help="tcg: the lab under TCG; kvm: direct mode on a host"
                    " with vmx/svm (default: auto, or $LAB_ACCEL)")
    ap.add_argument("--timeout", type=float, default=1500,
                    help="seconds for one lab run (or $LAB_TIMEOUT)")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="echo the lab console")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("build")
    t = sub.add_parser("test")
    t.add_argument("--checks", default="",
                   help="comma-separated checks of this boot, in order"
                   " (default: %s)" % ",".join(CHECKS))
    t.add_argument("--only", default="",
                   help="run only these checks (comma-separated; also"
                   " kvm-suite/<program>), or $LAB_ONLY")
    r = sub.add_parser("run")
    r.add_argument("--shell", action="store_true")
    r.add_argument("--bring", action="append", default=[],
                   help="a host file to copy into the lab at the same"
                   " absolute path (repeatable)")
    r.add_argument("--interactive", action="store_true",
                   help="the command runs on the terminal, every key"
                   " passed to it (no output capture, no exit status)")
    r.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    if not args.builddir:
        if os.path.isdir("meson-private"):
            args.builddir = os.getcwd()
        else:
            ap.error("give --builddir (or run from a meson build directory)")
    args.builddir = os.path.abspath(args.builddir)
    args.srcdir = os.path.abspath(args.srcdir)
    if args.cmd == "run" and args.command and args.command[0] == "--":
        args.command = args.command[1:]
    try:
        return {"build": cmd_build, "test": cmd_test,
                "run": cmd_run}[args.cmd](args)
    except LabError as e:
        log("LAB ERROR: " + str(e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
