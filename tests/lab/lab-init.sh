#!/bin/sh
# /init of the lab VM (busybox sh).  Installed by lab.py into the lab
# initramfs; the per-run plan (/lab/plan, appended as a second cpio) says
# what to do:
#   LAB_MODE=checks  LAB_CHECKS="up kvm ..."  run check_<name> for each
#   LAB_MODE=cmd     run /lab/cmd (sh) after the lab is prepared
#   LAB_MODE=shell   an interactive shell on the console
# Output protocol, one marker per line at the start of the line (lab.py
# parses them; everything else is shown as the check's output):
#   @@LAB-BEGIN <check>
#   @@LAB-SUBBEGIN <check> <subtest>
#   @@LAB-SUB <check> <subtest> PASS|FAIL <ms>
#   @@LAB-END <check> PASS|FAIL <ms>
#   @@LAB-EXIT <rc>        (cmd mode)
#   @@LAB-DONE
# Relayed nested-guest lines start with "guest| " and cannot forge markers.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /tmp /run
mount -t tmpfs tmp /tmp
exec </dev/console >/dev/console 2>&1

MODDIR=/lib/modules/lab
LAB_MODE=checks
LAB_CHECKS=""
LAB_KVM_SKIP=""
LAB_KVM_ONLY=""
[ -f /lab/plan ] && . /lab/plan

now_ms() {
	read -r up _ </proc/uptime
	up=${up%.*}${up#*.}
	up=${up#"${up%%[!0]*}"}
	echo $(( ${up:-0} * 10 ))
}

# Load a module and, first, everything it depends on (lab.py wrote the
# ordered closure to <name>.deps at image build time).
load_mod() {
	if [ ! -f "$MODDIR/$1.deps" ]; then
		echo "module $1 is not in the lab initramfs"
		return 1
	fi
	for m in $(cat "$MODDIR/$1.deps"); do
		grep -q "^$m " /proc/modules && continue
		if ! insmod "$MODDIR/$m.ko" $(cat "$MODDIR/$m.args" 2>/dev/null); then
			echo "insmod $m failed"
			return 1
		fi
		echo "loaded $m"
	done
}

cpu_virt() {
	if grep -qw svm /proc/cpuinfo; then
		echo svm
	elif grep -qw vmx /proc/cpuinfo; then
		echo vmx
	fi
}

ensure_kvm() {
	case "$(cpu_virt)" in
	svm) load_mod kvm_amd || return 1 ;;
	vmx) load_mod kvm_intel || return 1 ;;
	*) echo "the lab CPU has neither svm nor vmx"; return 1 ;;
	esac
	[ -c /dev/kvm ] || { echo "/dev/kvm did not appear"; return 1; }
}

ensure_vfio() {
	for m in vfio vfio_iommu_type1 vfio_pci; do
		load_mod $m || return 1
	done
}

# Path of the edu device (1234:11e8) in sysfs, or nothing.
edu_dev() {
	for d in /sys/bus/pci/devices/*; do
		if [ "$(cat $d/vendor)" = 0x1234 ] &&
		   [ "$(cat $d/device)" = 0x11e8 ]; then
			echo $d
			return
		fi
	done
}

bind_edu() {
	d=$(edu_dev)
	[ -n "$d" ] || { echo "no edu device (1234:11e8) on the PCI bus"; return 1; }
	if [ ! -e "$d/driver" ]; then
		echo "1234 11e8" >/sys/bus/pci/drivers/vfio-pci/new_id ||
			{ echo "writing vfio-pci new_id failed"; return 1; }
	fi
	sleep 0.2
	drv=$(basename "$(readlink "$d/driver")")
	[ "$drv" = vfio-pci ] ||
		{ echo "edu is bound to '$drv', not vfio-pci"; return 1; }
	[ -e "$d/iommu_group" ] ||
		{ echo "edu has no IOMMU group (is the IOMMU on?)"; return 1; }
	group=$(basename "$(readlink "$d/iommu_group")")
	echo "edu $(basename $d) bound to vfio-pci, IOMMU group $group"
	[ -c /dev/vfio/vfio ] || { echo "/dev/vfio/vfio missing"; return 1; }
	[ -c "/dev/vfio/$group" ] ||
		{ echo "/dev/vfio/$group missing"; return 1; }
	ls -l /dev/vfio
}

# ------------------------------------------------------------------ checks
check_up() {
	echo "lab kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) CPUs, uptime $(cut -d' ' -f1 /proc/uptime) s"
	grep -m1 "model name" /proc/cpuinfo
	[ -d /proc/self ] && [ -d /sys/bus/pci/devices ]
}

check_kvm() {
	v=$(cpu_virt)
	[ -n "$v" ] || { echo "no svm/vmx flag in the lab's /proc/cpuinfo"; return 1; }
	echo "lab CPU flag: $v"
	ensure_kvm || return 1
	case $v in
	svm) mod=kvm_amd ;;
	vmx) mod=kvm_intel ;;
	esac
	grep -q "^$mod " /proc/modules || { echo "$mod is not loaded"; return 1; }
	ls -l /dev/kvm
}

check_vfio() {
	ensure_vfio || return 1
	n=$(ls /sys/kernel/iommu_groups 2>/dev/null | wc -l)
	echo "$n IOMMU groups"
	[ "$n" -gt 0 ] || { echo "no IOMMU groups: intel_iommu=on did not take"; return 1; }
	bind_edu
}

# One @@LAB-SUB line per test program of the project's `kvm` suite.
# Programs named in $LAB_KVM_SKIP already have a result (the host runner
# restarted the lab after one of them froze it) and are not run again; when
# $LAB_KVM_ONLY is set, only the programs it names run.
check_kvm_suite() {
	ensure_kvm || return 1
	n=0
	failed=0
	for t in /lab/kvm-tests/*.sh; do
		[ -f "$t" ] || continue
		name=$(basename "$t" .sh)
		if [ -n "$LAB_KVM_ONLY" ]; then
			case " $LAB_KVM_ONLY " in
			*" $name "*) ;;
			*) continue ;;
			esac
		fi
		n=$((n + 1))
		case " $LAB_KVM_SKIP " in
		*" $name "*) echo "--- $name: has a result already"; continue ;;
		esac
		echo "@@LAB-SUBBEGIN kvm-suite $name"
		s=$(now_ms)
		echo "--- $name"
		sh "$t"
		rc=$?
		e=$(now_ms)
		if [ $rc = 0 ]; then
			st=PASS
		else
			st=FAIL
			failed=$((failed + 1))
			echo "$name: exit status $rc (77 = skipped counts as failed in the lab; 143 = killed by timeout)"
		fi
		echo "@@LAB-SUB kvm-suite $name $st $((e - s))"
	done
	if [ $n = 0 ]; then
		if [ -n "$LAB_KVM_ONLY" ]; then
			echo "no kvm test program named: $LAB_KVM_ONLY; built: $(ls /lab/kvm-tests | sed -n 's/\.sh$//p' | tr '\n' ' ')"
			return 1
		fi
		echo "no kvm tests built (see the static build log in the lab cache)"
		return 1
	fi
	echo "$n kvm test programs, $failed failed here"
	[ $failed = 0 ]
}

# Boot the Debian kernel as a nested guest under the test-only launcher.
check_guest_up() {
	ensure_kvm || return 1
	[ -x /lab/bin/lab-launch ] || { echo "lab-launch was not built"; return 1; }
	{
		/lab/bin/lab-launch -m 256 -t "${LAB_GUEST_TIMEOUT:-240}" \
			-a "console=ttyS0 panic=-1 reboot=k nokaslr no_timer_check quiet labhosttime=${LAB_HOST_TIME:-}" \
			/lab/guest/vmlinuz /lab/guest/initrd.cpio
		echo $? >/tmp/guest.rc
	} 2>&1 | tee /tmp/guest.log
	rc=$(cat /tmp/guest.rc)
	grep -q "^guest| LAB-GUEST-UP" /tmp/guest.log ||
		{ echo "the nested guest never printed LAB-GUEST-UP"; return 1; }
	[ "$rc" = 0 ] || { echo "lab-launch exit status $rc"; return 1; }
}

# The nested guest's own checks (virtio modules etc.) from the same run,
# one @@LAB-SUB line each with the check's output lines ("<name>: ...");
# the dev-* checks have lab checks of their own (below).
check_guest_checks() {
	[ -f /tmp/guest.log ] || { echo "the nested guest did not run"; return 1; }
	grep "^guest| GUEST-CHECK " /tmp/guest.log | grep -v "GUEST-CHECK dev-" |
		sed 's/^guest| //' >/tmp/guest-checks
	n=0
	while read -r _ name st _; do
		grep "^guest| $name: " /tmp/guest.log | sed 's/^guest| //'
		[ "$st" = PASS ] || st=FAIL
		echo "@@LAB-SUB guest-checks $name $st 0"
		n=$((n + 1))
	done </tmp/guest-checks
	grep -q "^guest| GUEST-CHECKS-DONE" /tmp/guest.log ||
		{ echo "the nested guest did not finish its checks"; return 1; }
	[ $n -gt 0 ] || { echo "the nested guest reported no checks"; return 1; }
}

# One guest check's result (and its own output lines "<name>: ...").
guest_dev_check() {
	[ -f /tmp/guest.log ] || { echo "the nested guest did not run"; return 1; }
	grep "^guest| $1: " /tmp/guest.log | sed 's/^guest| //'
	grep "^guest| GUEST-CHECK $1 " /tmp/guest.log | sed 's/^guest| //'
	grep -q "^guest| GUEST-CHECK $1 " /tmp/guest.log ||
		{ echo "the nested guest did not run $1"; return 1; }
	grep -q "^guest| GUEST-CHECK $1 PASS" /tmp/guest.log
}

# libdevices against the nested Linux guest under lab-launch:
# 16550A on IRQ 4 with interrupt-driven transmit,
check_guest_serial_irq() { guest_dev_check dev-serial-irq; }
# PCI configuration mechanism #1 and the host bridge,
check_guest_pci() { guest_dev_check dev-pci; }
# the CMOS RTC read by rtc_cmos,
check_guest_rtc() { guest_dev_check dev-rtc; }
# the i8042 probed quietly, and the reboot through it (0xfe) ending the run.
check_guest_i8042() {
	r=0
	guest_dev_check dev-i8042 || r=1
	if grep -q "^lab-launch: guest reset (i8042)" /tmp/guest.log; then
		grep "^lab-launch: guest reset (i8042)" /tmp/guest.log
	else
		echo "lab-launch did not report a reset through the i8042:"
		grep "^lab-launch: " /tmp/guest.log
		r=1
	fi
	return ${r:-0}
}

run_check() {
	name=$1
	fn=check_$(echo "$name" | tr - _)
	echo "@@LAB-BEGIN $name"
	s=$(now_ms)
	if type "$fn" >/dev/null 2>&1 && ( "$fn" ); then
		st=PASS
	else
		st=FAIL
	fi
	e=$(now_ms)
	echo "@@LAB-END $name $st $((e - s))"
}

case $LAB_MODE in
checks)
	for c in $LAB_CHECKS; do
		run_check "$c"
	done
	;;
cmd)
	ensure_kvm >/tmp/prep.log 2>&1 || cat /tmp/prep.log
	ensure_vfio >>/tmp/prep.log 2>&1 || echo "vfio modules did not load"
	bind_edu >>/tmp/prep.log 2>&1 || true
	cd /lab || true
	sh /lab/cmd
	echo "@@LAB-EXIT $?"
	;;
shell)
	ensure_kvm
	ensure_vfio
	echo "lab shell: /lab/bin has the launcher, /lab/kvm-tests the kvm tests; exit to power off"
	setsid cttyhack sh
	;;
esac
echo "@@LAB-DONE"
sync
reboot -f
