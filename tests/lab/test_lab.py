#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""Unit tests of lab.py that need no QEMU (meson test lab-py, suite unit):
cpio writing, .deb fetching and unpacking, the console protocol, the
freeze-and-retry bookkeeping, check selection and the TAP report."""

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab  # noqa: E402

lab.log = lambda msg: None  # progress lines would clutter unittest's output


def read_newc(data):
    """Parses a newc archive: list of (name, mode, data, (rmajor, rminor),
    header offset)."""
    out = []
    off = 0
    while True:
        if data[off:off + 6] != b"070701":
            raise ValueError("no newc magic at %d" % off)
        f = [int(data[off + 6 + 8 * i:off + 14 + 8 * i], 16)
             for i in range(13)]
        mode, size, rmaj, rmin, namesize = f[1], f[6], f[9], f[10], f[11]
        name_at = off + 110
        name = data[name_at:name_at + namesize - 1].decode()
        if data[name_at + namesize - 1] != 0:
            raise ValueError("name of %s not NUL-terminated" % name)
        body = name_at + namesize
        body += -body % 4
        out.append((name, mode, data[body:body + size], (rmaj, rmin), off))
        off = body + size
        off += -off % 4
        if name == "TRAILER!!!":
            return out, off


class CpioTest(unittest.TestCase):
    def archive(self):
        cp = lab.Cpio()
        cp.add_bytes("/lab/plan", b"LAB_MODE=checks\n")  # 16 bytes
        cp.add_bytes("lab/odd", b"abcde", 0o755)  # not a multiple of 4
        cp.symlink("bin/sh", "/bin/busybox")
        cp.chardev("dev/console", 5, 1)
        cp.mkdir("lab")  # already there: no second entry
        return cp.data()

    def test_round_trip(self):
        data = self.archive()
        self.assertEqual(len(data) % 512, 0)
        entries, end = read_newc(data)
        self.assertEqual(data[end:], b"\0" * (len(data) - end))
        by_name = {e[0]: e for e in entries}
        self.assertEqual([e[0] for e in entries],
                         ["lab", "lab/plan", "lab/odd", "bin", "bin/sh",
                          "dev", "dev/console", "TRAILER!!!"])
        for e in entries:
            self.assertEqual(e[4] % 4, 0, e[0])
        self.assertEqual(by_name["lab"][1], stat.S_IFDIR | 0o755)
        self.assertEqual(by_name["lab/plan"][2], b"LAB_MODE=checks\n")
        self.assertEqual(by_name["lab/plan"][1], stat.S_IFREG | 0o644)
        self.assertEqual(by_name["lab/odd"][2], b"abcde")
        self.assertEqual(by_name["lab/odd"][1], stat.S_IFREG | 0o755)
        self.assertEqual(by_name["bin/sh"][1], stat.S_IFLNK | 0o777)
        self.assertEqual(by_name["bin/sh"][2], b"/bin/busybox")
        self.assertEqual(by_name["dev/console"][1], stat.S_IFCHR | 0o600)
        self.assertEqual(by_name["dev/console"][3], (5, 1))

    def test_inode_numbers_differ(self):
        data = self.archive()
        inos = [data[e[4] + 6:e[4] + 14] for e in read_newc(data)[0]]
        self.assertEqual(len(set(inos)), len(inos))

    def test_cpio_tool_reads_it(self):
        if shutil.which("cpio") is None:
            self.skipTest("cpio is not installed (tests/lab/install-deps.sh)")
        r = subprocess.run(["cpio", "-it", "--quiet"], input=self.archive(),
                           capture_output=True, check=True)
        self.assertEqual(r.stdout.decode().splitlines(),
                         ["lab", "lab/plan", "lab/odd", "bin", "bin/sh",
                          "dev", "dev/console"])
        r = subprocess.run(["cpio", "-itv", "--quiet"], input=self.archive(),
                           capture_output=True, check=True)
        lines = r.stdout.decode().splitlines()
        self.assertTrue(lines[4].startswith("lrwxrwxrwx"), lines[4])
        self.assertTrue(lines[4].endswith("-> /bin/busybox"), lines[4])
        self.assertTrue(lines[6].startswith("crw-------"), lines[6])
        self.assertTrue(lines[2].startswith("-rwxr-xr-x"), lines[2])

    def test_write_if_changed(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "lab.cpio")
            lab.write_if_changed(p, b"one")
            os.utime(p, (1000, 1000))
            lab.write_if_changed(p, b"one")
            self.assertEqual(os.stat(p).st_mtime, 1000)
            lab.write_if_changed(p, b"two")
            with open(p, "rb") as f:
                self.assertEqual(f.read(), b"two")


class DebTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="lab-test-")
        self.cache = os.path.join(self.tmp, "cache")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def build_deb(self):
        root = os.path.join(self.tmp, "pkg")
        os.makedirs(os.path.join(root, "DEBIAN"))
        os.makedirs(os.path.join(root, "boot"))
        with open(os.path.join(root, "DEBIAN", "control"), "w") as f:
            f.write("Package: lab-test\nVersion: 1:2.0-1\nArchitecture: all\n"
                    "Maintainer: c-vmm <lab@example.invalid>\n"
                    "Description: lab.py unit test\n")
        with open(os.path.join(root, "boot", "vmlinuz-test"), "w") as f:
            f.write("not a kernel\n")
        deb = os.path.join(self.tmp, "lab-test_1%3a2.0-1_all.deb")
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip",
                        "--build", root, deb], check=True,
                       capture_output=True)
        return deb

    def test_unpack_and_reuse(self):
        deb = self.build_deb()
        dest = lab.unpack_deb(self.cache, deb)
        self.assertEqual(dest, os.path.join(self.cache, "unpacked",
                                            "lab-test_1%3a2.0-1_all"))
        kernel = os.path.join(dest, "boot", "vmlinuz-test")
        with open(kernel) as f:
            self.assertEqual(f.read(), "not a kernel\n")
        self.assertTrue(os.path.exists(os.path.join(dest, ".done")))
        # Unpacked once: a second call reuses the tree as it is.
        with open(kernel, "w") as f:
            f.write("changed\n")
        self.assertEqual(lab.unpack_deb(self.cache, deb), dest)
        with open(kernel) as f:
            self.assertEqual(f.read(), "changed\n")
        # An interrupted unpack (no .done) starts over.
        os.unlink(os.path.join(dest, ".done"))
        lab.unpack_deb(self.cache, deb)
        with open(kernel) as f:
            self.assertEqual(f.read(), "not a kernel\n")

    def test_fetch_finds_cached_deb_by_version(self):
        debs = os.path.join(self.cache, "debs")
        os.makedirs(debs)
        for f in ("lab-test_1%3a2.0-10_all.deb", "lab-test-dbg_1%3a2.0-1_all"
                  ".deb", "lab-test_1%3a2.0-1_all.deb"):
            open(os.path.join(debs, f), "w").close()
        self.assertEqual(lab.fetch_deb(self.cache, "lab-test", "1:2.0-1"),
                         os.path.join(debs, "lab-test_1%3a2.0-1_all.deb"))


class ElfTest(unittest.TestCase):
    def test_interpreter(self):
        interp = lab.elf_interpreter(os.path.realpath(sys.executable))
        self.assertIsNotNone(interp)
        self.assertRegex(interp, r"^/.*ld-linux.*\.so")
        self.assertIsNone(lab.elf_interpreter(os.path.abspath(__file__)))
        self.assertIsNone(lab.elf_interpreter("/nonexistent/lab"))


def feed(run, con, lines):
    for i, line in enumerate(lines):
        lab.read_line(run, con, line, float(i))


class ConsoleTest(unittest.TestCase):
    def test_results(self):
        run = lab.LabRun.of(["up", "kvm-suite", "guest-up", "guest-checks"])
        con = lab.Console()
        feed(run, con, [
            "Linux version ...",  # before any check: nobody's output
            "@@LAB-BEGIN up",
            "lab kernel 6.1",
            "@@LAB-END up PASS 100",
            "@@LAB-BEGIN kvm-suite",
            "@@LAB-SUBBEGIN kvm-suite kvm-a",
            "@@LAB-SUB kvm-suite kvm-a PASS 300",
            "@@LAB-SUBBEGIN kvm-suite kvm-b",
            "kvm-b: exit status 1",
            "@@LAB-SUB kvm-suite kvm-b FAIL 2000",
            "@@LAB-END kvm-suite FAIL 2400",
            "@@LAB-BEGIN guest-up",
            # A relayed guest line cannot end a check.
            "guest| @@LAB-END guest-up PASS 1",
            "@@LAB-END guest-up PASS 25000",
            "@@LAB-BEGIN guest-checks",
            "mod-virtio_net: not in the initramfs",
            "@@LAB-SUB guest-checks mod-virtio PASS 0",
            "@@LAB-SUB guest-checks mod-virtio_net FAIL 0",
            "@@LAB-END guest-checks PASS 10",
        ])
        c = run.checks
        self.assertEqual(c["up"].status, "PASS")
        self.assertEqual(c["up"].output, ["lab kernel 6.1"])
        self.assertEqual(c["up"].lab_ms, 100)
        self.assertEqual(c["up"].host_s, 2.0)
        self.assertEqual(c["kvm-suite"].status, "FAIL")
        self.assertEqual([(s.name, s.status, s.lab_ms)
                          for s in c["kvm-suite"].subs],
                         [("kvm-a", "PASS", 300), ("kvm-b", "FAIL", 2000)])
        self.assertEqual(c["guest-up"].status, "PASS")
        self.assertEqual(c["guest-up"].output,
                         ["guest| @@LAB-END guest-up PASS 1"])
        # The check said PASS, but one of its sub-results failed.
        self.assertEqual(c["guest-checks"].status, "FAIL")
        self.assertEqual(run.first_check_s, 1.0)
        self.assertEqual(run.pending(), [])
        self.assertFalse(con.done)
        feed(run, con, ["@@LAB-DONE"])
        self.assertTrue(con.done)
        self.assertEqual(len(run.tail), 20)

    def test_tap(self):
        run = lab.LabRun.of(["up", "kvm-suite", "guest-up"])
        feed(run, lab.Console(), [
            "@@LAB-BEGIN up", "hello", "@@LAB-END up PASS 100",
            "@@LAB-BEGIN kvm-suite",
            "@@LAB-SUB kvm-suite kvm-a PASS 300",
            "@@LAB-SUB kvm-suite kvm-b FAIL 2000",
            "@@LAB-END kvm-suite FAIL 2400",
        ])
        tap = lab.tap_lines(run)
        self.assertEqual(tap[0], "1..5")
        results = [ln for ln in tap[1:] if not ln.startswith("#")]
        self.assertTrue(all(ln.startswith("#") or ln in results
                            for ln in tap[1:]))
        self.assertIn("# up | hello", tap)
        # The same regular expression meson's TAP parser uses.
        rx = re.compile(r"((?:not )?ok)\s*(?:([0-9]+)\s*)?([^#]*)(?:\s*#\s*"
                        r"([Ss][Kk][Ii][Pp]\S*|[Tt][Oo][Dd][Oo])\b\s*(.*))?")
        parsed = []
        for ln in results:
            m = rx.match(ln)
            self.assertIsNotNone(m, ln)
            self.assertIsNone(m.group(4), "no SKIP/TODO directive: " + ln)
            parsed.append((m.group(1), int(m.group(2)),
                           m.group(3).strip(" -")))
        self.assertEqual(parsed, [
            ("ok", 1, "up"), ("ok", 2, "kvm-suite/kvm-a"),
            ("not ok", 3, "kvm-suite/kvm-b"), ("not ok", 4, "kvm-suite"),
            ("not ok", 5, "guest-up")])
        self.assertIn("# not run", results[4])

    def test_no_lab_fails_every_check(self):
        run = lab.LabRun.of(["up", "kvm"])
        run.error = "qemu-system-x86_64 not found"
        tap = lab.tap_lines(run)
        self.assertEqual(tap, ["1..2",
                               "# LAB ERROR: qemu-system-x86_64 not found",
                               "not ok 1 - up # not run",
                               "not ok 2 - kvm # not run"])

    def test_freeze_of_a_check_retries_twice_by_default(self):
        os.environ["LAB_CHECK_TIMEOUT_SCALE"] = "1"
        os.environ.pop("LAB_FREEZE_RETRIES", None)
        run = lab.LabRun.of(["guest-up"])
        for attempt in (1, 2, 3):
            con = lab.Console()
            feed(run, con, ["@@LAB-BEGIN guest-up", "booting"])
            self.assertTrue(con.overran(400.0))
            lab.after_freeze(run, con, 400.0)
            c = run.checks["guest-up"]
            self.assertEqual(c.status, "FAIL" if attempt == 3
                             else "INCOMPLETE")
        self.assertIn("froze the lab again", c.output[-1])

    def test_freeze_of_a_check_retries_once(self):
        os.environ["LAB_CHECK_TIMEOUT_SCALE"] = "1"
        os.environ["LAB_FREEZE_RETRIES"] = "1"
        run = lab.LabRun.of(["up", "guest-up", "guest-rtc"])
        for attempt in (1, 2):
            con = lab.Console()
            feed(run, con, ["@@LAB-BEGIN guest-up", "booting"])
            self.assertFalse(con.overran(250.0))
            self.assertTrue(con.overran(400.0))
            lab.after_freeze(run, con, 400.0)
            c = run.checks["guest-up"]
            if attempt == 1:
                self.assertEqual(c.status, "INCOMPLETE")
                self.assertIn("booting again to run it once more",
                              c.output[-1])
                self.assertEqual(run.pending(), ["up", "guest-up",
                                                 "guest-rtc"])
        self.assertEqual(c.status, "FAIL")
        self.assertIn("froze the lab again", c.output[-1])
        self.assertEqual(run.pending(), ["up", "guest-rtc"])
        self.assertIn("LAB_CHECKS='up guest-rtc'\n", lab.plan_text(run, 0))

    def test_freeze_of_a_program_skips_it_after_two(self):
        os.environ["LAB_CHECK_TIMEOUT_SCALE"] = "1"
        os.environ["LAB_FREEZE_RETRIES"] = "1"
        run = lab.LabRun.of(["kvm-suite"])
        for attempt in (1, 2):
            con = lab.Console()
            feed(run, con, ["@@LAB-BEGIN kvm-suite",
                            "@@LAB-SUB kvm-suite kvm-a PASS 300",
                            "@@LAB-SUBBEGIN kvm-suite kvm-b"])
            self.assertFalse(con.overran(100.0))  # a program has 150 s
            self.assertTrue(con.overran(200.0))
            lab.after_freeze(run, con, 200.0)
        c = run.checks["kvm-suite"]
        self.assertEqual([(s.name, s.status) for s in c.subs],
                         [("kvm-a", "PASS"), ("kvm-b", "FAIL")])
        self.assertEqual(c.status, "INCOMPLETE")  # the other programs run
        self.assertEqual(run.pending(), ["kvm-suite"])
        self.assertIn("LAB_KVM_SKIP='kvm-a kvm-b'\n", lab.plan_text(run, 0))
        self.assertEqual(sum("once more" in x for x in c.output), 1)
        # Its third boot: the remaining program passes, the check fails.
        feed(run, lab.Console(), ["@@LAB-BEGIN kvm-suite",
                                  "@@LAB-SUB kvm-suite kvm-c PASS 1",
                                  "@@LAB-END kvm-suite PASS 5"])
        self.assertEqual(c.status, "FAIL")
        self.assertEqual(len(c.subs), 3)

    def test_run_qemu_stops_a_frozen_lab(self):
        # A stand-in for QEMU whose check never ends.
        os.environ["LAB_CHECK_TIMEOUT_SCALE"] = "0.01"  # budget 0.9 s
        try:
            run = lab.LabRun.of(["up"])
            con = lab.Console()
            with tempfile.TemporaryDirectory() as d:
                t0 = time.monotonic()
                rc, timed_out = lab.run_qemu(
                    ["sh", "-c", "echo @@LAB-BEGIN up; echo hi; exec sleep 60"],
                    30, os.path.join(d, "console.log"),
                    on_line=lambda ln, now: lab.read_line(run, con, ln, now),
                    should_stop=con.overran)
                self.assertLess(time.monotonic() - t0, 20)
                with open(os.path.join(d, "console.log")) as f:
                    self.assertIn("] hi\n", f.read())
        finally:
            os.environ["LAB_CHECK_TIMEOUT_SCALE"] = "1"
        self.assertFalse(timed_out)
        self.assertTrue(con.frozen)
        self.assertEqual(run.checks["up"].output, ["hi"])

    def test_plan_selects_programs(self):
        run = lab.LabRun.of(["kvm-suite"], ["kvm-a"])
        self.assertIn("LAB_KVM_ONLY=kvm-a\n", lab.plan_text(run, 1234))
        self.assertIn("LAB_HOST_TIME=1234\n", lab.plan_text(run, 1234))


class SelectTest(unittest.TestCase):
    def test_all(self):
        default = [c for c in lab.CHECKS if c not in lab.OPT_IN_CHECKS]
        self.assertEqual(lab.select_checks(lab.CHECKS, []), (default, []))
        self.assertIn("guest-net-tap", default)
        self.assertIn("guest-net-user", default)
        self.assertNotIn("net-tap-qemu", default)
        self.assertEqual(
            lab.select_checks(lab.CHECKS, ["net-tap-qemu"])[0],
            ["net-tap-qemu"])

    def test_opt_in_only_when_named(self):
        saved = lab.OPT_IN_CHECKS
        lab.OPT_IN_CHECKS = {"guest-net-tap"}
        try:
            self.assertNotIn("guest-net-tap",
                             lab.select_checks(lab.CHECKS, [])[0])
            self.assertIn("guest-net-tap",
                          lab.select_checks(lab.CHECKS, ["guest-net-tap"])[0])
        finally:
            lab.OPT_IN_CHECKS = saved

    def test_guest_check_brings_guest_up(self):
        self.assertEqual(lab.select_checks(lab.CHECKS, ["guest-rtc"]),
                         (["guest-up", "guest-rtc"], []))
        self.assertEqual(lab.select_checks(lab.CHECKS, ["guest-up", "up"]),
                         (["up", "guest-up"], []))

    def test_one_program(self):
        self.assertEqual(lab.select_checks(lab.CHECKS, ["kvm-suite/kvm-a"]),
                         (["kvm-suite"], ["kvm-a"]))

    def test_acpi_off_is_its_own_boot(self):
        self.assertEqual(lab.select_checks(lab.CHECKS, ["guest-acpi-off"]),
                         (["guest-acpi-off"], []))

    def test_qemu_peer_for_the_benchmark(self):
        saved = os.environ.pop("LAB_BENCH_QEMU", None)
        try:
            self.assertTrue(lab.want_qemu_peer(["up", "cvmm-bench"]))
            self.assertFalse(lab.want_qemu_peer(["up", "guest-up"]))
            self.assertFalse(lab.want_qemu_peer())
            os.environ["LAB_BENCH_QEMU"] = "0"
            self.assertFalse(lab.want_qemu_peer(["cvmm-bench"]))
            os.environ["LAB_BENCH_QEMU"] = "1"
            self.assertTrue(lab.want_qemu_peer())
        finally:
            os.environ.pop("LAB_BENCH_QEMU", None)
            if saved is not None:
                os.environ["LAB_BENCH_QEMU"] = saved

    def test_unknown(self):
        with self.assertRaisesRegex(lab.LabError, "no lab check named"):
            lab.select_checks(lab.CHECKS, ["guest-nothing"])
        with self.assertRaisesRegex(lab.LabError, "only kvm-suite"):
            lab.select_checks(lab.CHECKS, ["up/x"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
