#!/bin/sh
# /init of the nested guests (busybox sh), booted inside the lab by cvmm
# (and by tools/boot-guest).  What it does depends on labmode= on the
# kernel command line:
#   checks (default)  prints LAB-GUEST-UP, runs the checks it was given and
#                     reports each as one line, then `reboot -f`:
#     GUEST-CHECK <name> PASS|FAIL
#     - mod-<module>: insmod of each module listed in /lib/modules/lab/wanted,
#       in dependency order (<module>.deps, written by lab.py);
#     - every executable /checks/<name> (from tests/lab/guest-checks/).
#     A check's own output lines start with "<name>: " (lab-init.sh shows
#     them with the check's result); then GUEST-CHECKS-DONE.
#   poweroff          LAB-INFO lines, then `poweroff -f` (ACPI S5)
#   stdin             LAB-INFO lines, LAB-STDIN-READY, a shell reading the
#                     console (the lab types into cvmm's stdin), then
#                     `poweroff -f`
#   hvc               the same as stdin on hvc0 (virtio-console)
#   panic             loads pvpanic, then panics the kernel (sysrq c)
#   vsock             virtio-vsock (cvmm --vsock): 16 MiB guest->host to
#                     port 5000, 16 MiB host->guest on port 6000, a connect
#                     to port 5999 (no host listener) refused; "vsock: "
#                     lines, then `poweroff -f`
#   bench             `reboot -f` at once (the boot benchmark)
#   shell             the demo of tools/boot-guest: virtio modules, what was
#                     found, a shell on the console; poweroff ends it
#   info              the same without the shell: prints and powers off
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
MODDIR=/lib/modules/lab
mode=checks
for w in $(cat /proc/cmdline); do
	case $w in labmode=*) mode=${w#labmode=} ;; esac
done

[ "$mode" = bench ] && reboot -f
echo "LAB-GUEST-UP $(uname -r) uptime $(cut -d' ' -f1 /proc/uptime) s mode $mode"

load_mod() {
	[ -f "$MODDIR/$1.deps" ] ||
		{ echo "mod-$1: not in the initramfs (LAB_OMIT_MODULES?)"; return 1; }
	for m in $(cat "$MODDIR/$1.deps"); do
		grep -q "^$m " /proc/modules && continue
		insmod "$MODDIR/$m.ko" || { echo "mod-$1: insmod $m failed"; return 1; }
	done
}

# What the guest sees, one LAB-INFO line each (the lab checks read them).
info() {
	echo "LAB-INFO kernel $(uname -r)"
	echo "LAB-INFO cpus $(grep -c ^processor /proc/cpuinfo) online $(cat /sys/devices/system/cpu/online)"
	echo "LAB-INFO memtotal-kb $(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
	echo "LAB-INFO dmesg-memory $(dmesg | grep -m1 ' Memory: ' | sed 's/.*Memory: //')"
	if dmesg | grep -q "A valid RSDP was not found"; then
		echo "LAB-INFO acpi no-rsdp"
	else
		echo "LAB-INFO acpi $(dmesg | grep -c 'ACPI: [A-Z][A-Z][A-Z][A-Z] 0x') tables: $(dmesg | sed -n 's/.*ACPI: \([A-Z][A-Z][A-Z][A-Z]\) 0x.*/\1/p' | tr '\n' ' ')"
	fi
	echo "LAB-INFO pci $(ls /sys/bus/pci/devices | tr '\n' ' ')"
	echo "LAB-INFO virtio $(ls /sys/bus/virtio/devices 2>/dev/null | tr '\n' ' ')"
	echo "LAB-INFO virtio-on $(for d in /sys/bus/virtio/devices/*; do [ -e $d ] && echo "$(basename $d):device$(cat $d/device):$(basename "$(readlink -f $d/..)")"; done | tr '\n' ' ')"
	echo "LAB-INFO uptime $(cut -d' ' -f1 /proc/uptime) s"
}

case $mode in
checks)
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
	info
	echo "GUEST-CHECKS-DONE"
	reboot -f
	;;
poweroff)
	info
	poweroff -f
	;;
stdin)
	info
	echo "LAB-STDIN-READY"
	timeout 60 sh
	echo "LAB-STDIN-SHELL-DONE"
	poweroff -f
	;;
hvc)
	# The same as stdin, on the virtio console (cvmm --console virtio).
	load_mod virtio_pci
	load_mod virtio_mmio
	load_mod virtio_console
	load_mod virtio_rng
	i=0
	while [ ! -c /dev/hvc0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	exec </dev/hvc0 >/dev/hvc0 2>&1
	echo "LAB-HVC-UP"
	info
	echo "LAB-STDIN-READY"
	timeout 60 sh
	poweroff -f
	;;
vsock)
	load_mod virtio_pci || echo "vsock: virtio_pci did not load"
	load_mod vmw_vsock_virtio_transport ||
		echo "vsock: vmw_vsock_virtio_transport did not load"
	vsock-tool recv 6000 >/tmp/h2g.out 2>&1 &
	h2g=$!
	echo "vsock: g2h $(vsock-tool send 2 5000 16777216 2>&1)"
	i=0
	while kill -0 $h2g 2>/dev/null && [ $i -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done
	kill $h2g 2>/dev/null
	echo "vsock: h2g $(grep -v LISTENING /tmp/h2g.out)"
	echo "vsock: refused $(vsock-tool refused 2 5999 2>&1)"
	echo "LAB-VSOCK-DONE"
	poweroff -f
	;;
panic)
	load_mod pvpanic_pci || echo "pvpanic_pci did not load"
	echo "LAB-PANIC-NOW"
	echo c >/proc/sysrq-trigger
	;;
shell | info)
	for m in $(cat $MODDIR/wanted 2>/dev/null); do
		load_mod "$m" >/dev/null 2>&1
	done
	info | sed 's/^LAB-INFO /  /'
	if [ "$mode" = shell ]; then
		echo "Shell on the guest console: 'poweroff -f' or 'reboot -f' ends cvmm (Ctrl-A x quits)."
		setsid cttyhack sh
	fi
	poweroff -f
	;;
esac
reboot -f
