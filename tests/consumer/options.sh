#!/bin/sh
# Every library can be left out: configures c-vmm once per library with
# that library disabled (tests, fuzz targets, benchmarks and examples left
# as they are, so their meson files are evaluated without it too), and
# checks that the libraries needing it are left out with it.
# Usage: options.sh SOURCE_ROOT WORKDIR
set -eu
src=$1 work=$2
rm -rf "$work"
mkdir -p "$work"
# clang when there is one, so that the fuzz targets' meson files are
# evaluated as well (fuzz=auto builds them only with clang).
if command -v clang >/dev/null 2>&1; then
	CC=clang
	export CC
fi
status=0
for lib in vm-memory vm-allocator kvm-ioctls virtio-queue vfio devices linux-loader vhost; do
	dir="$work/no-$lib"
	if ! meson setup "$dir" "$src" "-D$lib=disabled" -Dlab=disabled \
		>"$dir.log" 2>&1; then
		cat "$dir.log"
		echo "options: -D$lib=disabled does not configure"
		status=1
		continue
	fi
	# The summary lists the library as not built.
	if ! grep -q "lib$lib *: NO" "$dir.log"; then
		echo "options: -D$lib=disabled still builds lib$lib"
		status=1
	fi
	echo "options: -D$lib=disabled configures"
	rm -rf "$dir"
done
exit $status
