#!/bin/sh
# Builds a throw-away meson project that pulls c-vmm in as a subproject
# (dependency('cvmm-vm-memory') resolved through meson.override_dependency)
# and runs the program it links.  Usage: subproject.sh SOURCE_ROOT WORKDIR
set -eu
src=$1 work=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work/subprojects/c-vmm"
# A copy, not a symlink: meson refuses subprojects that point outside.
(cd "$src" && tar --exclude='./build*' --exclude=./.git --exclude=./tests/lab/cache -cf - .) |
	tar -C "$work/subprojects/c-vmm" -xf -
cp "$here/consumer.c" "$work/"
cat > "$work/meson.build" <<'MESON'
project('cvmm-consumer', 'c', default_options: ['c_std=gnu11'])
subproject('c-vmm', default_options: ['tests=disabled', 'benchmarks=false',
  'examples=false', 'fuzz=disabled', 'lab=disabled', 'default_library=static'])
executable('consumer', 'consumer.c', dependencies: [dependency('cvmm-vm-memory'),
  dependency('cvmm-vm-allocator'), dependency('cvmm-kvm-ioctls'),
  dependency('cvmm-virtio-queue'), dependency('cvmm-virtio-queue-driver'),
  dependency('cvmm-devices'),
  dependency('cvmm-vfio'), dependency('cvmm-linux-loader'),
  dependency('cvmm-vhost')])
MESON
meson setup "$work/build" "$work" >"$work/setup.log" 2>&1 || { cat "$work/setup.log"; exit 1; }
# Warnings are errors in c-vmm's own builds only (tools/run-tests passes
# -Dwerror=true): nothing of c-vmm may reach a parent project's compile
# lines with -Werror.
if grep -q -e '-Werror' "$work/build/compile_commands.json"; then
	echo "c-vmm as a subproject compiles with -Werror:"
	grep -e '-Werror' "$work/build/compile_commands.json" | head -n 3
	exit 1
fi
meson compile -C "$work/build" >"$work/compile.log" 2>&1 || { cat "$work/compile.log"; exit 1; }
"$work/build/consumer"
