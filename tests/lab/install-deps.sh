#!/bin/sh
# Install what the nested lab needs on a Debian/Ubuntu host (idempotent).
#   qemu-system-x86  the lab VM (TCG, or KVM where the host has vmx/svm)
#   busybox-static   userland of the lab and of the nested guests
#   cpio             initramfs archives
#   kmod             modinfo, to order kernel modules by their dependencies
#   xz-utils, zstd   decompress .ko.xz / .ko.zst modules at build time
#   python3-pyflakes lab.py's lint (meson test pyflakes, suite 'style')
# The Debian kernel itself is fetched by the image builder with
# `apt-get download`, so an apt source for linux-image-amd64 must exist.
set -eu
pkgs="qemu-system-x86 busybox-static cpio kmod xz-utils zstd gzip python3-pyflakes"
missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
		grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	echo "lab dependencies already installed:$(printf ' %s' $pkgs)"
	exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO=sudo
fi
echo "installing:$missing"
$SUDO apt-get update
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing
