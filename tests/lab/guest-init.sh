#!/bin/sh
# /init of the nested guests (busybox sh), booted inside the lab by the
# test-only launcher (later by cvmm).  It prints LAB-GUEST-UP, then runs the
# checks it was given and reports each as one line:
#   GUEST-CHECK <name> PASS|FAIL
#   - mod-<module>: insmod of each module listed in /lib/modules/lab/wanted,
#     in dependency order (<module>.deps, written by lab.py);
#   - every executable /checks/<name> (from tests/lab/guest-checks/).
# A check's own output lines start with "<name>: " (lab-init.sh shows them
# with the check's result).
# then GUEST-CHECKS-DONE, and resets the machine with `reboot -f`.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
MODDIR=/lib/modules/lab

echo "LAB-GUEST-UP $(uname -r) uptime $(cut -d' ' -f1 /proc/uptime) s"

load_mod() {
	[ -f "$MODDIR/$1.deps" ] ||
		{ echo "mod-$1: not in the initramfs (LAB_OMIT_MODULES?)"; return 1; }
	for m in $(cat "$MODDIR/$1.deps"); do
		grep -q "^$m " /proc/modules && continue
		insmod "$MODDIR/$m.ko" || { echo "mod-$1: insmod $m failed"; return 1; }
	done
}

for m in $(cat $MODDIR/wanted 2>/dev/null); do
	if load_mod "$m"; then
		echo "GUEST-CHECK mod-$m PASS"
	else
		echo "GUEST-CHECK mod-$m FAIL"
	fi
done
for c in /checks/*; do
	[ -x "$c" ] || continue
	if "$c"; then
		echo "GUEST-CHECK $(basename "$c") PASS"
	else
		echo "GUEST-CHECK $(basename "$c") FAIL"
	fi
done
echo "GUEST-CHECKS-DONE"
reboot -f
