#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""QEMU's vhost-user frontend against c-vmm's examples/vhost-user-blk.

Starts the daemon on a temporary image, then QEMU (TCG, stopped with -S,
no guest) with `-device vhost-user-blk-pci` on the daemon's socket and
guest RAM from a shared memfd backend.  Realizing the device makes QEMU
run the vhost-user start-up handshake against the daemon (in QEMU 7.2:
features, protocol features, queue count, owner, the block config, whose
failure fails the realize and QEMU's start); the test asks
QEMU over QMP for the PCI devices and expects a virtio-blk function
(1af4:1042) whose config QEMU read, then quits QEMU and checks that the
daemon is still serving (it takes the next connection).  The guest I/O
path is proven in the lab (guest-vhost-user).

Usage: test_qemu_frontend.py QEMU_SYSTEM_X86_64 VHOST_USER_BLK
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time


def wait_for(path, proc, seconds=10.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if os.path.exists(path):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def qmp(proc, cmd):
    proc.stdin.write(json.dumps({"execute": cmd}) + "\n")
    proc.stdin.flush()
    while True:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("QEMU closed QMP before answering " + cmd)
        msg = json.loads(line)
        if "return" in msg or "error" in msg:
            return msg


def main():
    qemu, daemon = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as d:
        img = os.path.join(d, "disk.img")
        sock = os.path.join(d, "blk.sock")
        with open(img, "wb") as f:
            f.truncate(8 << 20)
        dlog = open(os.path.join(d, "daemon.log"), "w+")
        dp = subprocess.Popen([daemon, "--socket", sock, "--image", img],
                              stdout=dlog, stderr=subprocess.STDOUT)
        try:
            if not wait_for(sock, dp):
                print("the daemon did not create its socket")
                return 1
            q = subprocess.Popen(
                [qemu, "-accel", "tcg", "-M", "q35", "-S", "-nodefaults",
                 "-display", "none", "-m", "64M",
                 "-object", "memory-backend-memfd,id=mem,size=64M,share=on",
                 "-numa", "node,memdev=mem",
                 "-chardev", "socket,id=c0,path=" + sock,
                 "-device", "vhost-user-blk-pci,chardev=c0,num-queues=1,disable-legacy=on",
                 "-qmp", "stdio"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)
            try:
                greeting = q.stdout.readline()
                if not greeting:
                    print("QEMU failed to start: " + q.stderr.read().strip())
                    return 1
                qmp(q, "qmp_capabilities")
                pci = qmp(q, "query-pci")
                devs = [dev for bus in pci.get("return", [])
                        for dev in bus.get("devices", [])]
                blk = [dev for dev in devs
                       if dev.get("id", {}).get("vendor") == 0x1af4 and
                       dev["id"].get("device") == 0x1042]
                print("QEMU: %s" % subprocess.run(
                    [qemu, "--version"], capture_output=True,
                    text=True).stdout.splitlines()[0])
                print("PCI functions: %s" % ", ".join(
                    "%04x:%04x" % (dev["id"]["vendor"], dev["id"]["device"])
                    for dev in devs))
                if not blk:
                    print("no virtio-blk function (1af4:1042) in QEMU")
                    return 1
                qmp(q, "quit")
                q.wait(timeout=30)
            finally:
                if q.poll() is None:
                    q.kill()
                    q.wait()
            # QEMU's disconnect ended that connection; the daemon serves
            # the next one.
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(sock)
            hdr = (1).to_bytes(4, "little") + (1).to_bytes(4, "little") + \
                (0).to_bytes(4, "little")
            s.sendall(hdr)  # GET_FEATURES
            reply = b""
            while len(reply) < 20:
                chunk = s.recv(20 - len(reply))
                if not chunk:
                    break
                reply += chunk
            s.close()
            if len(reply) != 20:
                print("the daemon did not answer after QEMU left")
                return 1
            feats = int.from_bytes(reply[12:20], "little")
            print("daemon after QEMU: GET_FEATURES %#x" % feats)
            if not feats & (1 << 32):
                return 1
            return 0
        finally:
            dp.terminate()
            dp.wait(timeout=10)
            dlog.seek(0)
            out = dlog.read().strip()
            if out:
                print("daemon: " + out.replace("\n", "\ndaemon: "))


if __name__ == "__main__":
    sys.exit(main())
