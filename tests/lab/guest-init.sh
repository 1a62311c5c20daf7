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
#   net               virtio-net on a tap: address, ping, 64 MiB each way
#   netuser           virtio-net on user networking (libslirp): DHCP, a
#                     file over HTTP from the lab host, a hostfwd listener
#   panic             loads pvpanic, then panics the kernel (sysrq c)
#   vsock             virtio-vsock (cvmm --vsock): 16 MiB guest->host to
#                     port 5000, 16 MiB host->guest on port 6000, a connect
#                     to port 5999 (no host listener) refused; "vsock: "
#                     lines, then `poweroff -f`
#   packed            cvmm --virtio-ring packed (lab check guest-packed):
#                     per virtio device its negotiated features (bits 34
#                     RING_PACKED, 35 IN_ORDER), /checks/blk on the disks,
#                     /checks/channel, 1 MiB over vsock to the host, then
#                     ping and 4 MiB each way over a tap; powers off
#   bench             `reboot -f` at once (the boot benchmark)
#   one               loads the modules of labmods= (comma-separated, with
#                     their dependencies), runs /checks/<labcheck=>, prints
#                     GUEST-CHECK <name> PASS|FAIL, then `reboot -f` (a
#                     single check under another VMM: qemu-vhost-user-blk)
#   reboot            LAB-INFO lines (also the MP table and the timer
#                     interrupt), then `reboot -f` (the acpi=off boot)
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
reboot)
	info
	echo "LAB-INFO mptable $(dmesg | grep -c 'found SMP MP-table')"
	echo "LAB-INFO timer-irq $(grep ' timer$' /proc/interrupts | tr -s ' ')"
	reboot -f
	;;
irq)
	# cvmm's interrupt delivery to virtio-pci (guest-intx boots this with
	# pci=nomsi, guest-msix-smp with 4 CPUs): virtio-rng works and its
	# interrupts count.
	load_mod virtio_pci
	load_mod virtio_rng
	for c in dev-rng irq-virtio; do
		if /checks/$c; then
			echo "GUEST-CHECK $c PASS"
		else
			echo "GUEST-CHECK $c FAIL"
		fi
	done
	poweroff -f
	;;
vfio)
	# cvmm --vfio with QEMU's edu (lab check guest-vfio): find 1234:11e8,
	# enable it, drive BAR0 through /dev/mem (busybox devmem).
	d=""
	for x in /sys/bus/pci/devices/*; do
		[ "$(cat $x/vendor)" = 0x1234 ] && [ "$(cat $x/device)" = 0x11e8 ] && d=$x
	done
	echo "LAB-VFIO dev ${d:-none} class $([ -n "$d" ] && cat $d/class)"
	if [ -n "$d" ]; then
		echo 1 >$d/enable
		bar=$(($(head -1 $d/resource | cut -d' ' -f1)))
		devmem $((bar + 0x20)) 32 0 # no factorial interrupt
		echo "LAB-VFIO bar0 $(printf 0x%x $bar)"
		echo "LAB-VFIO id $(devmem $bar 32)"
		devmem $((bar + 4)) 32 0x12345678
		echo "LAB-VFIO liveness $(devmem $((bar + 4)) 32)"
		devmem $((bar + 8)) 32 10
		i=0
		while [ $(($(devmem $((bar + 0x20)) 32) & 1)) = 1 ] && [ $i -lt 100 ]; do
			sleep 0.05
			i=$((i + 1))
		done
		echo "LAB-VFIO factorial $(devmem $((bar + 8)) 32)"
		# INTx: uio_pci_generic (PCI 2.3 masking); edu raises its
		# interrupt on a write to 0x60, lowers it on 0x64; a read of
		# /dev/uioN blocks for the next interrupt and returns the count.
		# A device left with its factorial interrupt enabled (status
		# 0x80) raised one for the factorial above: start clean.
		devmem $((bar + 0x20)) 32 0
		devmem $((bar + 0x64)) 32 0xffffffff
		load_mod uio_pci_generic
		echo "1234 11e8" >/sys/bus/pci/drivers/uio_pci_generic/new_id
		i=0
		while [ $i -lt 100 ]; do
			u=$(ls $d/uio 2>/dev/null | head -1)
			[ -n "$u" ] && [ -c "/dev/$u" ] && break
			sleep 0.05
			i=$((i + 1))
		done
		echo "LAB-VFIO uio ${u:-none} irq $(cat $d/irq)"
		if [ -n "$u" ]; then
			# Opened before the first interrupt: a read waits for a
			# count newer than the one this open file last saw.
			exec 3</dev/$u
			for k in 1 2; do
				devmem $((bar + 0x60)) 32 1
				timeout 10 dd of=/tmp/uio-$k bs=4 count=1 <&3 2>/dev/null
				c=$(od -An -tu4 /tmp/uio-$k 2>/dev/null | tr -d ' ')
				devmem $((bar + 0x64)) 32 1
				# Re-enable: uio_pci_generic's handler set
				# Interrupt Disable (command bit 10); clear it
				# through the config file (the high byte of
				# the command register holds nothing else here).
				dd if=/dev/zero of=$d/config bs=1 count=1 seek=5 conv=notrunc 2>/dev/null ||
					echo "LAB-VFIO uio-enable-$k failed"
				echo "LAB-VFIO uio-count-$k ${c:-none}"
				echo "LAB-VFIO diag-$k cmd+status $(od -An -tx2 -j4 -N4 $d/config) edu-irq $(devmem $((bar + 0x24)) 32)"
			done
			exec 3<&-
			grep -i uio /proc/interrupts | sed 's/^/LAB-VFIO interrupts /'
		fi
		# DMA into guest RAM and MSI (edu-guest, tests/vfio): the
		# device unbound, driven through config and resource0.  Vector
		# 223 (0xdf): far above what Linux allocates here, so nothing
		# handles it and each message is logged.
		[ -e $d/driver ] && echo $(basename $d) >$d/driver/unbind
		if command -v edu-guest >/dev/null; then
			edu-guest $d dma
			edu-guest $d msi 223
		else
			echo "LAB-VFIO dma edu-guest-missing"
		fi
	fi
	poweroff -f
	;;
net)
	# cvmm --net tap (lab check guest-net-tap): an address, ping the lab
	# host (10.0.3.1 on the tap), 64 MiB each way through busybox nc; the
	# queue pairs the driver set up and the interrupts per queue.
	load_mod virtio_pci
	load_mod virtio_net
	i=0
	while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	ip link set lo up
	ip addr add 10.0.3.2/24 dev eth0
	ip link set eth0 up
	echo "LAB-INFO net-eth0 $(cat /sys/class/net/eth0/address 2>/dev/null) $(ip -4 addr show eth0 | sed -n 's/.*inet \([^ ]*\).*/\1/p')"
	echo "LAB-INFO net-queues $(ls /sys/class/net/eth0/queues 2>/dev/null | tr '\n' ' ')"
	if ping -c 3 -W 5 10.0.3.1 >/tmp/ping 2>&1; then
		echo "LAB-INFO net-ping ok $(tail -1 /tmp/ping)"
	else
		echo "LAB-INFO net-ping failed $(tail -2 /tmp/ping | tr '\n' ' ')"
	fi
	dd if=/dev/urandom of=/tmp/out bs=1M count=64 2>/dev/null
	echo "LAB-INFO net-out-md5 $(md5sum </tmp/out | cut -d' ' -f1)"
	s=$(cut -d' ' -f1 /proc/uptime)
	# each direction is bounded so that the whole run stays within cvmm's
	# --timeout (240 s in the lab): guest->host through cvmm's tap took
	# 69-96 s of the guest's clock in the lab (2026-12-03), so it gets
	# 150 s and the faster direction 60
	timeout 150 nc 10.0.3.1 5001 </tmp/out
	e=$(cut -d' ' -f1 /proc/uptime)
	echo "LAB-INFO net-out-time $s $e"
	# stdin stays open (the console): nc leaves when the host closes
	timeout 60 nc 10.0.3.1 5002 </dev/console >/tmp/in
	s=$(cut -d' ' -f1 /proc/uptime)
	echo "LAB-INFO net-in-md5 $(md5sum </tmp/in | cut -d' ' -f1) $(wc -c </tmp/in)"
	echo "LAB-INFO net-in-time $e $s"
	echo "LAB-INFO net-irqs $(grep -E 'virtio[0-9]+-(input|output)' /proc/interrupts | awk '{ n = 0; for (i = 2; i <= NF - 2; i++) if ($i ~ /^[0-9]+$/) n += $i; print $NF "=" n }' | tr '\n' ' ')"
	echo "LAB-NET-DONE"
	poweroff -f
	;;
packed)
	# cvmm --virtio-ring packed,in_order=on (lab check guest-packed): what
	# each virtio device negotiated (sysfs features: one character per
	# bit, bit 0 first), the blk guest check over packed rings, and the
	# tap (lab host 10.0.4.1, guest 10.0.4.2): ping, 4 MiB each way.
	load_mod virtio_pci
	load_mod virtio_mmio # (for a --transport mmio boot of this mode)
	load_mod virtio_blk
	load_mod virtio_rng
	load_mod virtio_net
	load_mod virtio_console
	load_mod vmw_vsock_virtio_transport
	i=0
	while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	i=0
	while ! grep -qx lab.echo /sys/class/virtio-ports/*/name 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	for d in /sys/bus/virtio/devices/*; do
		[ -e "$d/features" ] || continue
		f=$(cat $d/features)
		echo "LAB-INFO packed-dev $(basename $d) device $(cat $d/device) driver $(basename "$(readlink -f $d/driver)") bit34 $(echo "$f" | cut -c35) bit35 $(echo "$f" | cut -c36) parent $(basename "$(readlink -f $d/..)") features $f"
	done
	/checks/blk
	BLK_NAME=blk-uring BLK_RW_SERIAL=labur /checks/blk
	if /checks/channel; then
		echo "LAB-INFO packed-channel PASS"
	else
		echo "LAB-INFO packed-channel FAIL"
	fi
	echo "LAB-INFO packed-vsock-g2h $(vsock-tool send 2 5000 1048576 2>&1)"
	ip link set lo up
	ip addr add 10.0.4.2/24 dev eth0
	ip link set eth0 up
	if ping -c 3 -W 5 10.0.4.1 >/tmp/ping 2>&1; then
		echo "LAB-INFO packed-ping ok $(tail -1 /tmp/ping)"
	else
		echo "LAB-INFO packed-ping failed $(tail -2 /tmp/ping | tr '\n' ' ')"
	fi
	dd if=/dev/urandom of=/tmp/out bs=1M count=4 2>/dev/null
	echo "LAB-INFO packed-out-md5 $(md5sum </tmp/out | cut -d' ' -f1)"
	timeout 60 nc 10.0.4.1 5011 </tmp/out
	timeout 60 nc 10.0.4.1 5012 </dev/console >/tmp/in
	echo "LAB-INFO packed-in-md5 $(md5sum </tmp/in | cut -d' ' -f1) $(wc -c </tmp/in)"
	echo "LAB-PACKED-DONE"
	poweroff -f
	;;
netuser)
	# cvmm --net user (lab check guest-net-user): an address from
	# libslirp's DHCP server (busybox udhcpc), a file over HTTP from the
	# lab host (slirp's gateway 10.0.2.2 is the lab's loopback), then one
	# connection from the lab host through hostfwd to a listener here.
	load_mod virtio_pci
	load_mod virtio_net
	i=0
	while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	ip link set lo up
	ip link set eth0 up
	# udhcpc's script: the lease into the interface and the route
	cat >/tmp/udhcpc.sh <<'SCRIPT'
#!/bin/sh
case "$1" in
deconfig) ip -4 addr flush dev "$interface" ;;
bound | renew)
	ip -4 addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" dev "$interface"
	for r in $router; do ip route add default via "$r" dev "$interface"; break; done
	echo "LAB-INFO netuser-lease $ip/${mask:-24} router $router dns $dns"
	;;
esac
SCRIPT
	chmod +x /tmp/udhcpc.sh
	timeout 60 udhcpc -i eth0 -f -q -n -t 10 -T 2 -s /tmp/udhcpc.sh >/tmp/dhcp 2>&1
	rc=$?
	echo "LAB-INFO netuser-dhcp rc $rc addr $(ip -4 addr show eth0 | sed -n 's/.*inet \([^ ]*\).*/\1/p') via $(ip route | sed -n 's/^default via \([^ ]*\).*/\1/p')"
	grep '^LAB-INFO ' /tmp/dhcp
	[ $rc = 0 ] || sed 's/^/udhcpc: /' /tmp/dhcp
	timeout 90 wget -q -O /tmp/file http://10.0.2.2:8080/file
	echo "LAB-INFO netuser-http rc $? $(md5sum </tmp/file | cut -d' ' -f1) $(wc -c </tmp/file)"
	echo "LAB-HOSTFWD-$(cat /proc/sys/kernel/random/uuid)" >/tmp/token
	echo "LAB-INFO netuser-token $(cat /tmp/token)"
	# one connection: the token, then end of input closes it
	timeout 90 nc -l -p 5555 </tmp/token
	echo "LAB-INFO netuser-listener rc $?"
	echo "LAB-NETUSER-DONE"
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
one)
	check= mods=
	for w in $(cat /proc/cmdline); do
		case $w in
		labcheck=*) check=${w#labcheck=} ;;
		labmods=*) mods=$(echo "${w#labmods=}" | tr , ' ') ;;
		esac
	done
	for m in $mods; do
		load_mod "$m" || echo "GUEST-CHECK mod-$m FAIL"
	done
	# until every virtio device has its driver (5 s at most)
	i=0
	while [ $i -lt 50 ]; do
		unbound=
		for d in /sys/bus/virtio/devices/*; do
			[ -e "$d" ] && [ ! -e "$d/driver" ] && unbound=1
		done
		[ -z "$unbound" ] && break
		sleep 0.1
		i=$((i + 1))
	done
	if [ -n "$check" ] && [ -x "/checks/$check" ] && "/checks/$check"; then
		echo "GUEST-CHECK $check PASS"
	else
		echo "GUEST-CHECK ${check:-none} FAIL"
	fi
	reboot -f
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
