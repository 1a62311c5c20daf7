#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""The nested lab: image builder and runner (see README.md beside this file).

Subcommands
  build   build (or reuse) the lab images in <builddir>/tests/lab/cache
  boot    boot the lab once, run every check, write results.json, print a
          timing table
  check   one meson test: print one check's result (booting the lab first
          if no result of this `meson test` run exists yet); --tap prints
          the check's sub-results as TAP
  run     run one shell command (or --shell) inside the lab, interactively

Results of one `meson test` invocation are shared through a lock file: the
first lab test to take <builddir>/tests/lab/lab.lock boots the lab and
writes results.json tagged with a session key (the pid and start time of
the `meson test` process that started us, or $LAB_SESSION); every other lab
test blocks on the lock, then finds results for its own session and reads
its check.  A new `meson test` run always boots again.
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

HERE = os.path.dirname(os.path.abspath(__file__))

# Modules of the lab VM: KVM (both vendors; the init picks by cpu flag) and
# VFIO.  Dependencies are added from `modinfo -F depends`.
LAB_MODULES = ["kvm_amd", "kvm_intel", "vfio", "vfio_iommu_type1", "vfio_pci"]
# Modules of the nested guests, loaded in this order by the guest's /init.
GUEST_MODULES = [
    "virtio", "virtio_ring", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
    "virtio_pci", "virtio_blk", "failover", "net_failover", "virtio_net",
    "virtio_console", "virtio_rng", "vsock",
    "vmw_vsock_virtio_transport_common", "vmw_vsock_virtio_transport",
]
LIB_OPTIONS = ["kvm-ioctls", "vm-memory", "virtio-queue", "vm-allocator",
               "vfio", "devices", "linux-loader"]
# The libraries lab-launch links (libdevices needs virtio-queue and
# vm-allocator): the static build enables them whatever the parent build says.
LAUNCHER_LIBS = ["kvm-ioctls", "vm-memory", "virtio-queue", "vm-allocator",
                 "devices"]

# no_timer_check: under a loaded TCG host the kernel's check that the timer
# interrupt works through the (remapped) IO-APIC can time out and panic.
LAB_CMDLINE = ("console=ttyS0 panic=-1 quiet intel_iommu=on no_timer_check"
               " rdinit=/init")


class LabError(Exception):
    """A problem that means the lab could not run (not a failed check)."""


# In TAP mode every line that is not a test result must start with "#".
LOG_PREFIX = "lab: "


def log(msg):
    for line in msg.split("\n"):
        print(LOG_PREFIX + line, flush=True)


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


def add_modules(cp, cache, idx, wanted, omit, args=None):
    closure, files, missing = module_closure(cache, idx, wanted, omit)
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
            "-Dexamples=false", "-Dtests=enabled", "-Dlab=enabled",
            "-Db_sanitize=none", "--buildtype=debugoptimized"]
    for o in (args.lib_options or parent_lib_options(args, meson)):
        if o and o.split("=")[0] not in LAUNCHER_LIBS:
            opts.append("-D" + o)
    # lab-launch is built on these: they are always on in the lab's build.
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


def build_images(args):
    """Returns a dict with paths of the kernel and the lab initramfs."""
    t0 = time.monotonic()
    cache = os.path.join(args.builddir, "tests", "lab", "cache")
    os.makedirs(cache, exist_ok=True)
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
    gmods, gmissing = add_modules(g, cache, idx, GUEST_MODULES, omit)
    guest_cpio = g.data()

    # The lab initramfs.
    c = Cpio()
    add_busybox(c, busybox)
    c.add_file("init", os.path.join(HERE, "lab-init.sh"), 0o755)
    lmods, lmissing = add_modules(c, cache, idx, LAB_MODULES, omit)
    c.add_file("lab/guest/vmlinuz", vmlinuz, 0o644)
    c.add_bytes("lab/guest/initrd.cpio", guest_cpio)
    launcher = os.path.join(sdir, "tests", "lab", "lab-launch")
    if up_to_date(sdir, launcher, static_ok):
        c.add_file("lab/bin/lab-launch", launcher, 0o755)
    c.mkdir("lab/kvm-tests")
    done = set()
    ktests = [t["name"] for t in tests if kvm_test_script(
        c, t, done, up_to_date(sdir, t["cmd"][0], static_ok), sdir)]
    img = os.path.join(cache, "images")
    os.makedirs(img, exist_ok=True)
    lab_cpio = os.path.join(img, "lab.cpio")
    write_if_changed(lab_cpio, c.data())
    manifest = {
        "kernel_package": kpkg, "kernel_version": kver, "release": release,
        "busybox_version": bbver, "vmlinuz": vmlinuz, "initrd": lab_cpio,
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
    if interactive:
        # Serial console and QEMU monitor muxed on the terminal (Ctrl-A x).
        cmd += ["-display", "none", "-serial", "mon:stdio"]
    else:
        cmd += ["-display", "none", "-monitor", "none", "-serial", "stdio"]
    return cmd


def make_initrd(manifest, plan, cmd_script=None):
    p = Cpio()
    p.add_bytes("lab/plan", plan.encode())
    if cmd_script is not None:
        p.add_bytes("lab/cmd", cmd_script.encode(), 0o755)
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
                if should_stop and should_stop(time.monotonic() - start):
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
    return (None if timed_out else proc.returncode), timed_out


# ---------------------------------------------------------------- boot
MARK = re.compile(r"^@@LAB-(BEGIN|END|SUBBEGIN|SUB|DONE|EXIT)\b ?(.*)$")


# Host-side budget of one check (wall clock, seconds; scaled by
# $LAB_CHECK_TIMEOUT_SCALE).  A check that overruns it has hung the lab:
# it fails, QEMU is killed and the lab boots again for the checks left.
# For kvm-suite the budget applies to each program (SUB_BUDGET) and to the
# time between them; inside the lab each program also runs under `timeout`
# ($LAB_KVM_TEST_TIMEOUT, default 120 s, or its meson timeout if smaller).
CHECK_BUDGET = {"kvm-suite": 90, "guest-up": 300}
CHECK_BUDGET_DEFAULT = 90
SUB_BUDGET = 150


def check_budget(name, sub=None):
    scale = float(os.environ.get("LAB_CHECK_TIMEOUT_SCALE", "1"))
    if sub:
        return SUB_BUDGET * scale
    return CHECK_BUDGET.get(name, CHECK_BUDGET_DEFAULT) * scale


def boot(args, checks):
    """Boots the lab and runs `checks`, booting again after a check hangs
    the lab (that check fails; for kvm-suite only the hung program does);
    returns the results dict."""
    t0 = time.monotonic()
    choose_accel(args)
    qemu_cmd("tcg", "", "")  # fails early and clearly when QEMU is missing
    res = {"checks": {c: {"status": "NOT RUN", "output": [], "subs": []}
                      for c in checks},
           "error": None, "accel": None, "timings": {}, "boots": 0,
           "console_logs": []}
    manifest = build_images(args)
    res["images"] = manifest
    t_img = time.monotonic()
    res["timings"]["images"] = round(t_img - t0, 1)
    accel = choose_accel(args)
    res["accel"] = accel
    logdir = os.path.join(args.builddir, "tests", "lab", "logs")
    os.makedirs(logdir, exist_ok=True)
    total = float(os.environ.get("LAB_TIMEOUT", args.timeout))
    pending = list(checks)
    skip_subs = []
    retried = set()
    tail = []
    while pending:
        res["boots"] += 1
        plan = "LAB_MODE=checks\nLAB_CHECKS=%s\nLAB_KVM_SKIP=%s\n" % (
            shlex.quote(" ".join(pending)), shlex.quote(" ".join(skip_subs)))
        # The host's time, for the nested guest's RTC check.
        plan += "LAB_HOST_TIME=%d\n" % int(time.time())
        if os.environ.get("LAB_GUEST_TIMEOUT"):
            plan += "LAB_GUEST_TIMEOUT=%d\n" % int(
                os.environ["LAB_GUEST_TIMEOUT"])
        initrd = make_initrd(manifest, plan)
        logpath = os.path.join(logdir, "console-%s-%d.log" % (
            time.strftime("%Y%m%d-%H%M%S"), res["boots"]))
        res["console_log"] = logpath
        res["console_logs"].append(logpath)
        state = {"cur": None, "t": 0.0, "t_last": 0.0, "done": False,
                 "sub": None,
                 "ended": set(), "hung": False}

        def on_line(line, now):
            m = MARK.match(line)
            tail.append(line)
            del tail[:-25]
            if not m:
                if state["cur"]:
                    res["checks"][state["cur"]]["output"].append(line)
                return
            kind, rest = m.group(1), m.group(2).split()
            if kind == "BEGIN" and rest and rest[0] in res["checks"]:
                state["cur"] = rest[0]
                state["t"] = state["t_last"] = now
                res["checks"][rest[0]]["status"] = "INCOMPLETE"
                if "boot_s" not in res["timings"]:
                    res["timings"]["boot_s"] = round(now, 1)
            elif (kind == "END" and len(rest) >= 3
                  and rest[0] in res["checks"]):
                c = res["checks"][rest[0]]
                c["status"] = rest[1]
                if any(x["status"] != "PASS" for x in c["subs"]):
                    c["status"] = "FAIL"
                c["lab_ms"] = c.get("lab_ms", 0) + int(rest[2])
                c["host_s"] = round(c.get("host_s", 0) + now - state["t"], 2)
                state["cur"] = None
                state["ended"].add(rest[0])
                log("check %-14s %s  %6.1f s" % (rest[0], c["status"],
                                                  c["host_s"]))
            elif (kind == "SUBBEGIN" and len(rest) >= 2
                  and rest[0] in res["checks"]):
                state["sub"] = rest[1]
                state["t_last"] = now
            elif (kind == "SUB" and len(rest) >= 4
                  and rest[0] in res["checks"]):
                res["checks"][rest[0]]["subs"].append(
                    {"name": rest[1], "status": rest[2],
                     "lab_ms": int(rest[3])})
                skip_subs.append(rest[1])
                state["sub"] = None
                state["t_last"] = now
            elif kind == "DONE":
                state["done"] = True

        def should_stop(now):
            if state["cur"] and now - state["t_last"] > check_budget(
                    state["cur"], state["sub"]):
                state["hung"] = True
                return True
            return False

        left = total - (time.monotonic() - t_img)
        log("booting the lab (%s, %s), console log %s" % (
            "TCG" if accel == "tcg" else "KVM, direct mode",
            manifest["release"], logpath))
        t_boot = time.monotonic()
        try:
            rc, timed_out = run_qemu(
                qemu_cmd(accel, manifest["vmlinuz"], initrd), left, logpath,
                echo=args.verbose, on_line=on_line, should_stop=should_stop)
        finally:
            os.unlink(initrd)
        pending = [c for c in pending if c not in state["ended"]]
        cur = state["cur"]
        if state["done"]:
            break
        if state["hung"] and cur:
            c = res["checks"][cur]
            budget = check_budget(cur, state["sub"])
            c["host_s"] = round(c.get("host_s", 0) + time.monotonic()
                                - t_boot - state["t"], 2)
            what = state["sub"] or cur
            if what not in retried:
                # The lab VM itself can freeze (soft lockups of the lab
                # kernel under QEMU 7.2's TCG emulation of SVM, seen about
                # once in 20-50 kvm test programs, even with programs that
                # run no guest code).  That is the lab's failure, not the
                # check's: boot again and run it once more, and say so in
                # its output.  A second hang fails it.
                retried.add(what)
                c["output"].append("(%s: no result after %d s, the lab froze;"
                                   " booting again to run it once more)"
                                   % (what, budget))
                log("check %s hung the lab; booting again to retry it once"
                    % what)
                continue
            if state["sub"]:
                # One program of the check hung: it fails, the others run
                # after a reboot.
                c["subs"].append({"name": state["sub"], "status": "FAIL",
                                  "lab_ms": int(budget * 1000)})
                c["output"].append("(%s hung the lab: no result after %d s;"
                                   " the lab was restarted)"
                                   % (state["sub"], budget))
                skip_subs.append(state["sub"])
            else:
                c["status"] = "FAIL"
                c["output"].append("(hung the lab: no result after %d s; the"
                                   " lab was restarted for the remaining"
                                   " checks)" % budget)
                pending.remove(cur)
            log("check %s hung the lab; restarting it for: %s"
                % (state["sub"] or cur, " ".join(pending) or "nothing"))
            continue
        if timed_out:
            res["error"] = "the lab timed out after %d s (LAB_TIMEOUT)" % total
        else:
            res["error"] = ("the lab stopped before finishing its checks"
                            " (QEMU exit status %s)" % rc)
        if cur:
            res["checks"][cur]["output"].append(
                "(interrupted: %s)" % res["error"])
        break
    res["timings"]["qemu_s"] = round(time.monotonic() - t_img, 1)
    res["timings"]["total_s"] = round(time.monotonic() - t0, 1)
    if res["error"]:
        res["error"] += "; last lines of the console:\n" + "\n".join(
            "    " + t for t in tail if "TCG doesn't support" not in t)
    return res


def write_timings(labdir, res):
    """<builddir>/tests/lab/timings.txt: the table of the last lab run."""
    with open(os.path.join(labdir, "timings.txt"), "w") as f:
        t = res.get("timings", {})
        f.write("lab run %s (accel %s): images %.1f s, QEMU %.1f s, lab boot"
                " to first check %.1f s, total %.1f s\n" % (
                    time.strftime("%Y-%m-%d %H:%M:%S"), res.get("accel"),
                    t.get("images", 0), t.get("qemu_s", 0),
                    t.get("boot_s", 0), t.get("total_s", 0)))
        for name, c in res["checks"].items():
            f.write("%-16s %-10s %7.1f s\n" % (name, c["status"],
                                                c.get("host_s", 0.0)))
            for sub in c["subs"]:
                f.write("  %-30s %-4s %7.2f s\n" % (
                    sub["name"], sub["status"], sub["lab_ms"] / 1000.0))


def print_timings(res):
    t = res.get("timings", {})
    log("timings: images %.1f s, QEMU %.1f s (lab boot to first check"
        " %.1f s), total %.1f s, accel %s" % (
            t.get("images", 0), t.get("qemu_s", 0), t.get("boot_s", 0),
            t.get("total_s", 0), res.get("accel")))
    for name, c in res["checks"].items():
        log("  %-14s %-10s %7.1f s" % (name, c["status"],
                                        c.get("host_s", 0.0)))
        for s in c["subs"]:
            log("    %-30s %-4s %7.2f s" % (s["name"], s["status"],
                                            s["lab_ms"] / 1000.0))


# ---------------------------------------------------------- subcommands
def session_key():
    if os.environ.get("LAB_SESSION"):
        return os.environ["LAB_SESSION"]
    ppid = os.getppid()
    try:
        with open("/proc/%d/stat" % ppid) as f:
            start = f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        start = "?"
    return "ppid-%d-%s" % (ppid, start)


def cmd_check(args):
    global LOG_PREFIX
    if args.tap:
        LOG_PREFIX = "# lab: "
    checks = [c for c in args.checks.split(",") if c]
    if args.name not in checks:
        checks.append(args.name)
    labdir = os.path.join(args.builddir, "tests", "lab")
    os.makedirs(labdir, exist_ok=True)
    resfile = os.path.join(labdir, "results.json")
    key = session_key()
    signal.signal(signal.SIGTERM, on_sigterm)
    with open(os.path.join(labdir, "lab.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        res = None
        if os.path.exists(resfile):
            with open(resfile) as f:
                try:
                    old = json.load(f)
                except ValueError:
                    old = {}
            # Reuse a run of this session unless this check already took
            # its result from it (then this is a `meson test --repeat`).
            if (old.get("session") == key
                    and (args.name in old.get("checks", {})
                         or old.get("error"))
                    and args.name not in old.get("consumed", [])):
                res = old
                log("reusing the lab run of this meson test session (%s)"
                    % key)
        if res is None:
            try:
                res = boot(args, checks)
            except LabError as e:
                res = {"error": str(e), "checks": {}}
            except Terminated:
                res = {"error": "the lab run was terminated (meson test"
                       " timeout?)", "checks": {}}
            except subprocess.CalledProcessError as e:
                res = {"error": "command failed: %s" % e, "checks": {}}
            res["session"] = key
            if res["checks"]:
                write_timings(labdir, res)
                if args.name != "up":
                    print_timings(res)
        res["consumed"] = res.get("consumed", []) + [args.name]
        with open(resfile + ".tmp", "w") as f:
            json.dump(res, f, indent=1)
        os.replace(resfile + ".tmp", resfile)
    return report_check(args, res)


def report_check(args, res):
    c = res.get("checks", {}).get(args.name)
    if res.get("error"):
        log("LAB ERROR: " + res["error"])
    if res.get("console_log"):
        log("console log: " + res["console_log"])
    if c is None:
        log("check %s did not run" % args.name)
        if args.tap:
            print("1..1\nnot ok 1 - %s did not run" % args.name)
        return 1
    for line in c["output"]:
        print(LOG_PREFIX + "  | " + line)
    if args.name == "up":
        print_timings(res)  # lab-up always shows the table of the run
    status = c["status"]
    log("check %s: %s in %.1f s (lab clock %.2f s); whole lab run %.1f s" % (
        args.name, status, c.get("host_s", 0.0), c.get("lab_ms", 0) / 1000.0,
        res.get("timings", {}).get("total_s", 0)))
    if args.tap:
        subs = c["subs"]
        if not subs:
            print("1..1\nnot ok 1 - %s: no sub-results (%s)"
                  % (args.name, status))
            return 1
        lines = ["%s - %s # %.2f s in the lab" % (
            "ok" if t["status"] == "PASS" else "not ok", t["name"],
            t["lab_ms"] / 1000.0) for t in subs]
        if status != "PASS" and all(t["status"] == "PASS" for t in subs):
            lines.append("not ok - %s as a whole: %s" % (args.name, status))
        print("1..%d" % len(lines))
        for i, line in enumerate(lines, 1):
            ok, rest = line.split(" - ", 1)
            print("%s %d - %s" % (ok, i, rest))
        # Meson derives PASS/FAIL from the ok/not ok lines.
        return 0
    return 0 if status == "PASS" else 1


def cmd_boot(args):
    checks = [c for c in args.checks.split(",") if c]
    try:
        res = boot(args, checks)
    except LabError as e:
        log("LAB ERROR: " + str(e))
        return 1
    for name, c in res["checks"].items():
        for line in c["output"]:
            print("%s | %s" % (name, line))
    print_timings(res)
    if res["error"]:
        log("LAB ERROR: " + res["error"])
    bad = [n for n, c in res["checks"].items() if c["status"] != "PASS"]
    if bad:
        log("failed: " + " ".join(bad))
    return 1 if bad or res["error"] else 0


def cmd_build(args):
    try:
        m = build_images(args)
    except LabError as e:
        log("LAB ERROR: " + str(e))
        return 1
    print(json.dumps(m, indent=1))
    return 0


def cmd_run(args):
    try:
        manifest = build_images(args)
        accel = choose_accel(args)
    except LabError as e:
        log("LAB ERROR: " + str(e))
        return 1
    if args.shell:
        initrd = make_initrd(manifest, "LAB_MODE=shell\n")
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
    initrd = make_initrd(manifest, "LAB_MODE=cmd\n", script)
    exit_rc = {}

    def on_line(line, now):
        m = MARK.match(line)
        if m and m.group(1) == "EXIT":
            exit_rc["rc"] = int(m.group(2).split()[0])
        elif not m:
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
    ap.add_argument("--timeout", type=float, default=780,
                    help="seconds for one lab run (or $LAB_TIMEOUT)")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="echo the lab console")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("build")
    b = sub.add_parser("boot")
    b.add_argument("--checks", required=True)
    c = sub.add_parser("check")
    c.add_argument("--checks", default="")
    c.add_argument("--tap", action="store_true")
    c.add_argument("name")
    r = sub.add_parser("run")
    r.add_argument("--shell", action="store_true")
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
        return {"build": cmd_build, "boot": cmd_boot, "check": cmd_check,
                "run": cmd_run}[args.cmd](args)
    except LabError as e:
        log("LAB ERROR: " + str(e))
        return 1


if __name__ == "__main__":
    sys.exit(main())
