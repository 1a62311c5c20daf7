#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""cvmm's command line, host side (no KVM needed): --help and --version,
and bad invocations that must each give exactly one line on stderr naming
the flag, exit status 2, nothing on stdout and no file created.
Usage: test_cli.py <path to cvmm>   (TAP on stdout)"""

import os
import socket
import subprocess
import sys
import tempfile

CVMM = os.path.abspath(sys.argv[1])


def run(args, cwd):
    return subprocess.run([CVMM] + args, cwd=cwd, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=30)


def main():
    results = []
    with tempfile.TemporaryDirectory() as d:
        text = os.path.join(d, "notakernel")
        with open(text, "w") as f:
            f.write("this is not a kernel image\n" * 100)
        empty = os.path.join(d, "empty")
        open(empty, "w").close()
        # A file that starts like a bzImage but is cut short.
        short = os.path.join(d, "short-bzimage")
        with open(short, "wb") as f:
            hdr = bytearray(0x300)
            hdr[0x1fe:0x200] = b"\x55\xaa"
            hdr[0x202:0x206] = b"HdrS"
            hdr[0x206:0x208] = (0x20f).to_bytes(2, "little")
            hdr[0x1f1] = 60
            f.write(hdr)
        k = ["--kernel", text]
        disk = os.path.join(d, "disk.img")
        with open(disk, "wb") as f:
            f.truncate(1 << 20)
        # A listening unix socket, as a vhost-user backend has.
        sock = os.path.join(d, "vu.sock")
        vu = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        vu.bind(sock)
        vu.listen(1)
        bad = [
            ("no --kernel", [], "--kernel"),
            ("missing kernel file", ["--kernel", os.path.join(d, "nope")],
             "--kernel"),
            ("kernel is a directory", ["--kernel", d], "--kernel"),
            ("empty kernel", ["--kernel", empty], "--kernel"),
            ("kernel not an image", k, "--kernel"),
            ("truncated bzImage", ["--kernel", short], "--kernel"),
            ("kernel given twice", k + k, "--kernel"),
            ("memory not a number", k + ["--memory", "lots"], "--memory"),
            ("memory bad suffix", k + ["--memory", "12X"], "--memory"),
            ("memory zero", k + ["--memory", "0"], "--memory"),
            ("memory too small", k + ["--memory", "16M"], "--memory"),
            ("memory too large", k + ["--memory", "4096G"], "--memory"),
            ("memory not whole MiB", k + ["--memory", "65537K"],
             "--memory"),
            ("memory overflow", k + ["--memory", "99999999999999999999G"],
             "--memory"),
            ("cpus zero", k + ["--cpus", "0"], "--cpus"),
            ("cpus too many", k + ["--cpus", "255"], "--cpus"),
            ("cpus not a number", k + ["--cpus", "two"], "--cpus"),
            ("cpus negative", k + ["--cpus", "-1"], "--cpus"),
            ("console unknown", k + ["--console", "vga"], "--console"),
            ("console given twice", k + ["--console", "virtio", "--console", "none"], "--console"),
            ("rng given twice", k + ["--rng", "--rng"], "--rng"),
            ("transport unknown", k + ["--transport", "isa"], "--transport"),
            ("virtio-ring unknown layout", k + ["--virtio-ring", "ring"],
             "--virtio-ring"),
            ("virtio-ring empty", k + ["--virtio-ring", ""], "--virtio-ring"),
            ("virtio-ring bad in_order", k + ["--virtio-ring",
                                              "packed,in_order=yes"],
             "--virtio-ring"),
            ("virtio-ring unknown key", k + ["--virtio-ring",
                                             "packed,event_idx=off"],
             "--virtio-ring"),
            ("virtio-ring given twice", k + ["--virtio-ring", "packed",
                                             "--virtio-ring", "split"],
             "--virtio-ring"),
            ("disk without path", k + ["--disk", "readonly=on"], "--disk"),
            ("disk missing file", k + ["--disk", "path=" + d + "/no.img"],
             "--disk"),
            ("disk is a directory", k + ["--disk", "path=" + d], "--disk"),
            ("disk unknown key", k + ["--disk", "path=%s,cache=none" % disk],
             "--disk"),
            ("disk bad readonly", k + ["--disk",
                                       "path=%s,readonly=maybe" % disk],
             "--disk"),
            ("disk bad backend", k + ["--disk", "path=%s,backend=aio" % disk],
             "--disk"),
            ("disk serial too long",
             k + ["--disk", "path=%s,serial=%s" % (disk, "x" * 21)],
             "--disk"),
            ("disk not key=value", k + ["--disk", disk], "--disk"),
            ("channel without name", k + ["--channel", "socket=/tmp/x"],
             "--channel"),
            ("channel without socket", k + ["--channel", "name=a"],
             "--channel"),
            ("channel unknown key", k + ["--channel",
                                         "name=a,socket=/tmp/x,mode=raw"],
             "--channel"),
            ("channel bad server", k + ["--channel",
                                        "name=a,socket=/tmp/x,server=yes"],
             "--channel"),
            ("channel socket folder missing",
             k + ["--channel", "name=a,socket=%s/no/s,server=on" % d],
             "--channel"),
            ("channel socket too long",
             k + ["--channel", "name=a,socket=/" + "s" * 120], "--channel"),
            ("channel name with a space", k + ["--channel",
                                               "name=a b,socket=/tmp/x"],
             "--channel"),
            ("vfio path missing", k + ["--vfio", os.path.join(d, "no")],
             "--vfio"),
            ("vfio not a device (no iommu_group)", k + ["--vfio", d],
             "--vfio"),
            ("vfio a file", k + ["--vfio", disk], "--vfio"),
            ("net without a backend", k + ["--net", "mac=52:54:00:00:00:01"],
             "--net"),
            ("net empty tap name", k + ["--net", "tap="], "--net"),
            ("net tap name too long", k + ["--net", "tap=" + "t" * 16],
             "--net"),
            ("net multicast mac", k + ["--net", "tap=t0,mac=01:00:5e:00:00:01"],
             "--net"),
            ("net short mac", k + ["--net", "user,mac=52:54:00:12:34"],
             "--net"),
            ("net queues zero", k + ["--net", "tap=t0,queues=0"], "--net"),
            ("net queues too many", k + ["--net", "tap=t0,queues=5"],
             "--net"),
            ("net queues on user", k + ["--net", "user,queues=2"], "--net"),
            ("net vhost not on/off", k + ["--net", "tap=t0,vhost=yes"],
             "--net"),
            ("net vhost on user", k + ["--net", "user,vhost=on"], "--net"),
            ("net vhost with queues",
             k + ["--net", "tap=t0,queues=2,vhost=on"], "--net"),
            ("vsock vhost with a socket",
             k + ["--vsock", "cid=3,socket=/tmp/v,vhost=on"], "--vsock"),
            ("vsock vhost not on/off", k + ["--vsock", "cid=3,vhost=1"],
             "--vsock"),
            ("net hostfwd on tap", k + ["--net", "tap=t0,hostfwd=tcp::1-:2"],
             "--net"),
            ("net hostfwd port zero", k + ["--net", "user,hostfwd=tcp::0-:22"],
             "--net"),
            ("net hostfwd malformed", k + ["--net", "user,hostfwd=tcp:22"],
             "--net"),
            ("net unknown key", k + ["--net", "user,vlan=1"], "--net"),
            ("net given twice", k + ["--net", "user", "--net", "user"],
             "--net"),
            ("nine disks", k + ["--disk", "path=" + disk] * 9, "--disk"),
            ("disk vhost_user missing socket",
             k + ["--disk", "vhost_user=" + os.path.join(d, "no.sock")],
             "--disk"),
            ("disk vhost_user not a socket",
             k + ["--disk", "vhost_user=" + disk], "--disk"),
            ("disk vhost_user empty", k + ["--disk", "vhost_user="],
             "--disk"),
            ("disk vhost_user with path",
             k + ["--disk", "vhost_user=%s,path=%s" % (sock, disk)],
             "--disk"),
            ("disk vhost_user with readonly",
             k + ["--disk", "vhost_user=%s,readonly=on" % sock], "--disk"),
            ("vsock without cid", k + ["--vsock", "socket=%s/v.sock" % d],
             "--vsock"),
            ("vsock without socket", k + ["--vsock", "cid=3"], "--vsock"),
            ("vsock host cid", k + ["--vsock", "cid=2,socket=/tmp/v"],
             "--vsock"),
            ("vsock cid too large",
             k + ["--vsock", "cid=4294967295,socket=/tmp/v"], "--vsock"),
            ("vsock cid not a number",
             k + ["--vsock", "cid=three,socket=/tmp/v"], "--vsock"),
            ("vsock cid negative", k + ["--vsock", "cid=-3,socket=/tmp/v"],
             "--vsock"),
            ("vsock unknown key",
             k + ["--vsock", "cid=3,socket=/tmp/v,port=5"], "--vsock"),
            ("vsock not key=value", k + ["--vsock", "3"], "--vsock"),
            ("vsock socket folder missing",
             k + ["--vsock", "cid=3,socket=%s/no/v.sock" % d], "--vsock"),
            ("vsock socket too long",
             k + ["--vsock", "cid=3,socket=/" + "s" * 100], "--vsock"),
            ("vsock socket not a socket",
             k + ["--vsock", "cid=3,socket=" + disk], "--vsock"),
            ("vsock given twice",
             k + ["--vsock", "cid=3,socket=/tmp/v"] * 2, "--vsock"),
            ("fs without tag", k + ["--fs", "socket=%s" % sock], "--fs"),
            ("fs without socket", k + ["--fs", "tag=t"], "--fs"),
            ("fs empty tag", k + ["--fs", "tag=,socket=%s" % sock], "--fs"),
            ("fs tag too long",
             k + ["--fs", "tag=%s,socket=%s" % ("t" * 37, sock)], "--fs"),
            ("fs tag with a space",
             k + ["--fs", "tag=a b,socket=%s" % sock], "--fs"),
            ("fs socket missing",
             k + ["--fs", "tag=t,socket=%s/no.sock" % d], "--fs"),
            ("fs socket not a socket",
             k + ["--fs", "tag=t,socket=" + disk], "--fs"),
            ("fs queue_size not a power of two",
             k + ["--fs", "tag=t,socket=%s,queue_size=100" % sock], "--fs"),
            ("fs queue_size too large",
             k + ["--fs", "tag=t,socket=%s,queue_size=2048" % sock], "--fs"),
            ("fs unknown key",
             k + ["--fs", "tag=t,socket=%s,cache=none" % sock], "--fs"),
            ("fs given twice",
             k + ["--fs", "tag=t,socket=%s" % sock] * 2, "--fs"),
            ("rng with a value", k + ["--rng=on"], "--rng"),
            ("timeout negative", k + ["--timeout", "-5"], "--timeout"),
            ("timeout zero", k + ["--timeout", "0"], "--timeout"),
            ("timeout not a number", k + ["--timeout", "soon"],
             "--timeout"),
            ("initrd missing", k + ["--initrd", os.path.join(d, "no")],
             "--initrd"),
            ("cmdline control character", k + ["--cmdline", "a\tb"],
             "--cmdline"),
            ("cmdline unbalanced quote", k + ["--cmdline", 'x="a b'],
             "--cmdline"),
            ("unknown option", k + ["--frobnicate"], "--frobnicate"),
            ("unknown short option", k + ["-z"], "-z"),
            ("option without its value", k + ["--memory"], "--memory"),
            ("stray argument", k + ["bzImage"], "bzImage"),
        ]
        # Without the vhost modules (the build host): a usage error.
        for dev, flag, val in (("/dev/vhost-net", "--net", "tap=t0,vhost=on"),
                               ("/dev/vhost-vsock", "--vsock",
                                "cid=3,vhost=on")):
            if not os.access(dev, os.R_OK | os.W_OK):
                bad.append(("%s vhost without %s" % (flag, dev),
                            k + [flag, val], dev))
        for name, args, flag in bad:
            before = sorted(os.listdir(d))
            r = run(args, d)
            lines = r.stderr.splitlines()
            why = []
            if r.returncode != 2:
                why.append("exit status %d, not 2" % r.returncode)
            if len(lines) != 1:
                why.append("%d lines on stderr, not 1" % len(lines))
            elif flag not in lines[0] or not lines[0].startswith("cvmm: "):
                why.append("stderr does not name %s" % flag)
            if r.stdout:
                why.append("output on stdout")
            if sorted(os.listdir(d)) != before:
                why.append("files changed in the working directory")
            results.append((name, not why, "; ".join(why), r.stderr.strip()))

        r = run(["--help"], d)
        want = ["--kernel", "--initrd", "--cmdline", "--memory", "--cpus",
                "--console", "--timeout", "--rng", "--disk", "--channel", "--transport", "--vfio", "--net", "--verbose", "--help",
                "--version", "Ctrl-A x"]
        want += ["--vsock"]
        want += ["--fs"]
        want += ["--virtio-ring"]
        miss = [w for w in want if w not in r.stdout]
        results.append(("--help", r.returncode == 0 and not miss and
                        not r.stderr, "exit %d, missing %s" % (
                            r.returncode, miss), r.stdout.splitlines()[0]
                        if r.stdout else ""))
        r = run(["--version"], d)
        results.append(("--version", r.returncode == 0 and
                        r.stdout.startswith("cvmm ") and not r.stderr,
                        "exit %d" % r.returncode, r.stdout.strip()))

    print("1..%d" % len(results))
    for i, (name, ok, why, out) in enumerate(results, 1):
        if out:
            print("# %s: %s" % (name, out.replace("\n", "\n# ")))
        print("%s %d - %s%s" % ("ok" if ok else "not ok", i, name,
                                "" if ok else " # " + why))
    return 0


if __name__ == "__main__":
    sys.exit(main())
