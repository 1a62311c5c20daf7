#!/bin/sh
# Installs c-vmm into a temporary prefix, then compiles and links a program
# against it with nothing but pkg-config, shared and static.
# Usage: pkgconfig.sh SOURCE_ROOT WORKDIR
set -eu
src=$1 work=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work"
prefix="$work/prefix"
meson setup "$work/build" "$src" --prefix="$prefix" --libdir=lib \
	-Dtests=disabled -Dbenchmarks=false -Dexamples=false -Dfuzz=disabled \
	-Dlab=disabled >"$work/setup.log" 2>&1 || { cat "$work/setup.log"; exit 1; }
meson install -C "$work/build" >"$work/install.log" 2>&1 || { cat "$work/install.log"; exit 1; }
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
status=0
for pc in "$prefix"/lib/pkgconfig/*.pc; do
	name=$(basename "$pc" .pc)
	pkg-config --exists --print-errors "$name" || status=1
done
cc=${CC:-cc}
libs="cvmm-vm-memory cvmm-vm-allocator cvmm-kvm-ioctls cvmm-virtio-queue cvmm-virtio-queue-driver cvmm-devices
cvmm-vfio cvmm-linux-loader cvmm-vhost"
# The production virtqueue library exports the device API only: the mock
# driver lives in the test-support library cvmm-virtio-queue-driver.
if nm -D --defined-only "$prefix"/lib/libcvmm-virtio-queue.so | grep -q ' virtq_driver_'; then
	echo "libcvmm-virtio-queue.so exports the mock driver"
	status=1
fi
# shellcheck disable=SC2046,SC2086
$cc -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Werror -o "$work/consumer-shared" "$here/consumer.c" \
	$(pkg-config --cflags --libs $libs)
LD_LIBRARY_PATH="$prefix/lib" "$work/consumer-shared" || status=1
# shellcheck disable=SC2046,SC2086
$cc -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Werror -static -o "$work/consumer-static" "$here/consumer.c" \
	$(pkg-config --static --cflags --libs $libs)
"$work/consumer-static" || status=1
# Every installed header compiles on its own, in C11 with POSIX.1-2008
# (the headers use sigset_t, ssize_t, struct iovec...), and from C++.
cxx=${CXX:-c++}
# Headers known not to compile as C++, each failing as expected (the list
# fails once one of them compiles, so it cannot go stale):
# <linux/virtio_ring.h>, which the virtio-queue headers include, defines the
# legacy vring_init() with a void * conversion C++ refuses, unless
# VIRTIO_RING_NO_LEGACY is defined first.
cxx_known_bad=""
command -v "$cxx" >/dev/null 2>&1 || { echo "no C++ compiler ($cxx)"; exit 1; }
nhdr=0
for h in $(cd "$prefix/include" && find cvmm -name '*.h' | sort); do
	nhdr=$((nhdr + 1))
	printf '#include <%s>\nint main(void) { return 0; }\n' "$h" >"$work/hdr.c"
	$cc -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wpedantic -Werror \
		-I"$prefix/include" -c -o "$work/hdr.o" "$work/hdr.c" ||
		{ echo "header $h does not compile alone"; status=1; }
	cp "$work/hdr.c" "$work/hdr.cc"
	if $cxx -std=c++11 -Wall -Wextra -Wpedantic -Werror \
		-I"$prefix/include" -c -o "$work/hdr.o" "$work/hdr.cc" \
		>"$work/hdr-cxx.log" 2>&1; then
		case " $cxx_known_bad " in *" $h "*)
			echo "header $h compiles as C++ now: drop it from cxx_known_bad"
			status=1 ;;
		esac
	else
		case " $cxx_known_bad " in
		*" $h "*) echo "known: $h does not compile as C++ (see cxx_known_bad)" ;;
		*) cat "$work/hdr-cxx.log"; echo "header $h does not compile as C++"; status=1 ;;
		esac
	fi
done
# Each library installs its generated version header.
for h in vm-memory vm-allocator kvm-ioctls virtio-queue vfio linux-loader vhost; do
	[ -f "$prefix/include/cvmm/$h-version.h" ] ||
		{ echo "cvmm/$h-version.h not installed"; status=1; }
done
[ -f "$prefix/include/cvmm/devices/version.h" ] ||
	{ echo "cvmm/devices/version.h not installed"; status=1; }
# No build file of the source tree is installed with the headers.
if find "$prefix/include" -name meson.build | grep -q .; then
	echo "meson.build installed among the headers"; status=1
fi
echo "pkgconfig: $nhdr installed headers compiled alone in C11 and in C++11"
exit $status
