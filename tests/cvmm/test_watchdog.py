#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""cvmm's --timeout and its watchdog, with a tiny generated bzImage whose
64-bit entry halts with interrupts off (needs /dev/kvm; exit 77 without):
  - the guest runs until --timeout 1: exit status 4 within seconds;
  - the I/O thread wedged (shim-hang-loop.so: epoll_wait never returns)
    the watchdog ends cvmm 30 s after the timeout, status 4, one line
    naming the main thread's place, then its backtrace;
  - the stop wedged (shim-hang-join.so: joining a vCPU never succeeds):
    a warning at 10 s after the stop, the end at 30 s, status 4.
The two wedged runs go in parallel (about 32 s).
Usage: test_watchdog.py <cvmm> <shim-hang-loop.so> <shim-hang-join.so>"""

import os
import struct
import subprocess
import sys
import tempfile
import time

CVMM, SHIM_LOOP, SHIM_JOIN = (os.path.abspath(a) for a in sys.argv[1:4])


def bzimage():
    """A bzImage (boot protocol 2.15, 64-bit entry at payload + 0x200)
    whose code is `cli; hlt; jmp .-1`."""
    setup_sects = 4
    setup = (setup_sects + 1) * 512
    payload = bytearray(8192)
    payload[0x200:0x204] = b"\xfa\xf4\xeb\xfd"
    b = bytearray(setup) + payload

    def put(off, fmt, v):
        struct.pack_into("<" + fmt, b, off, v)
    put(0x1f1, "B", setup_sects)
    put(0x1f4, "I", len(payload) // 16)   # syssize
    put(0x1fe, "H", 0xaa55)               # boot_flag
    b[0x200:0x202] = b"\xeb\x66"          # jump over the header
    put(0x202, "I", 0x53726448)           # "HdrS"
    put(0x206, "H", 0x020f)               # version
    put(0x211, "B", 0x01)                 # loadflags: LOADED_HIGH
    put(0x22c, "I", 0x7fffffff)           # initrd_addr_max
    put(0x230, "I", 0x200000)             # kernel_alignment
    put(0x234, "B", 1)                    # relocatable_kernel
    put(0x236, "H", 0x0001)               # xloadflags: XLF_KERNEL_64
    put(0x238, "I", 2047)                 # cmdline_size
    put(0x258, "Q", 0x1000000)            # pref_address
    put(0x260, "I", 0x200000)             # init_size
    return bytes(b)


def start(kernel, shim=None):
    env = dict(os.environ)
    if shim:
        env["LD_PRELOAD"] = shim
        # an ASan build wants its runtime first; the shim does not care
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + \
            ":verify_asan_link_order=0"
    return subprocess.Popen(
        [CVMM, "--kernel", kernel, "--memory", "128M", "--timeout", "1",
         "--console", "none"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, env=env), time.monotonic()


def finish(p, t0, limit):
    try:
        _, err = p.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        return None, time.monotonic() - t0, err
    return p.returncode, time.monotonic() - t0, err


def main():
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError as e:
        print("1..0 # SKIP /dev/kvm: %s" % e)
        return 77
    out = subprocess.run(["ldd", CVMM], capture_output=True, text=True)
    if out.returncode != 0 or "not a dynamic executable" in out.stdout:
        print("1..0 # SKIP cvmm is statically linked (LD_PRELOAD shims)")
        return 77
    results = []
    with tempfile.TemporaryDirectory() as d:
        kernel = os.path.join(d, "halt.bzImage")
        with open(kernel, "wb") as f:
            f.write(bzimage())

        p, t0 = start(kernel)
        rc, s, err = finish(p, t0, 20)
        results.append((rc == 4 and s < 10 and
                        "timeout after 1 s" in err,
                        "--timeout 1 ends a halted guest: status %s after "
                        "%.1f s" % (rc, s), err))
        if not results[-1][0]:
            # without a working plain timeout the wedged runs say nothing
            return report(results)

        pl, tl = start(kernel, SHIM_LOOP)
        pj, tj = start(kernel, SHIM_JOIN)
        rc, s, err = finish(pl, tl, 60)
        lines = err.splitlines()
        ok = (rc == 4 and 28 < s < 45 and
              any("--timeout expired, cvmm did not stop within 30 s "
                  "(exiting); main thread in the I/O loop" in x
                  for x in lines) and
              any(x.startswith("cvmm: watchdog: thread ") for x in lines))
        results.append((ok, "I/O thread wedged: status %s after %.1f s, "
                        "the report and a backtrace" % (rc, s), err))
        rc, s, err = finish(pj, tj, 60)
        lines = err.splitlines()
        warn = [x for x in lines if "has not stopped within 10 s; main "
                "thread waiting for vCPU 0" in x]
        fatal = [x for x in lines if "did not stop within 30 s (exiting); "
                 "main thread waiting for vCPU 0" in x]
        ok = (rc == 4 and 28 < s < 45 and len(warn) == 1 and
              len(fatal) == 1 and lines.index(warn[0]) <
              lines.index(fatal[0]))
        results.append((ok, "stop wedged in the join: a warning, then "
                        "status %s after %.1f s" % (rc, s), err))
    return report(results)


def report(results):
    print("1..%d" % len(results))
    failed = 0
    for i, (ok, what, err) in enumerate(results, 1):
        print("%s %d - %s" % ("ok" if ok else "not ok", i, what))
        if not ok:
            failed += 1
            for line in err.splitlines()[-20:]:
                print("# " + line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
