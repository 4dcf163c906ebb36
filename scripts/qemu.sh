#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boots the test kernel in QEMU (TCG) with a busybox initramfs that holds
# the module, rust/tdx_sept_guard.ko, and, if it was built (TSG_TESTS=1),
# the test module rust/tdx_sept_guard_kunit.ko, both at the root under the
# same names, and, if make check built it, the module built against a
# headers tree, build/extmod/tdx_sept_guard.ko, as tdx_sept_guard_extmod.ko;
# the guest script decides what to load.
#
#   scripts/qemu.sh KDIR SCRIPT LOG [guest parameters...]
#
# SCRIPT is a guest script under scripts/guest/ (check, interface, run or
# bench); the remaining arguments go to /params for it to read.
# The serial log is written to LOG. A hard timeout (QEMU_TIMEOUT, seconds)
# ends a hung guest; the exit status is then 124.

. "$(dirname "$0")/lib.sh"

kdir=$1 script=$2 log=$3
shift 3
ko=$TOP/rust/tdx_sept_guard.ko
[ -f "$ko" ] || die "$ko is missing: run make first"
# Debian's busybox-static: the initramfs has no libraries.
busybox=/bin/busybox
[ -x "$busybox" ] || die "busybox-static is missing: run scripts/setup-host.sh"

root=$TOP/build/initramfs
rm -rf "$root"
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in sh mount cat echo ls insmod rmmod modinfo sleep usleep reboot grep sed seq \
	dmesg stat cut rm awk; do
	ln -s busybox "$root/bin/$applet"
done
cp "$ko" "$root/tdx_sept_guard.ko"
# tdx-host-check's module-side steps, which the interface checks run.
cp "$TOP/scripts/tdx-host-check-module" "$root/tdx-host-check-module"
test_ko=$TOP/rust/tdx_sept_guard_kunit.ko
[ ! -f "$test_ko" ] || cp "$test_ko" "$root/tdx_sept_guard_kunit.ko"
# The module make check built against a distribution-style headers tree
# (scripts/extmod-check.sh), if it did: the interface boot loads it too.
extmod_ko=$TOP/build/extmod/tdx_sept_guard.ko
[ ! -f "$extmod_ko" ] || cp "$extmod_ko" "$root/tdx_sept_guard_extmod.ko"
# The interface checks print KTAP with the kernel's own shell helpers.
ktap_helpers=$kdir/source/tools/testing/selftests/kselftest/ktap_helpers.sh
[ -f "$ktap_helpers" ] || die "$ktap_helpers is missing (KDIR must be an O= build tree with its source link)"
cp "$ktap_helpers" "$root/ktap_helpers.sh"
# busybox modinfo reads modules.dep first, even for a module given by path.
release=$(cat "$kdir/include/config/kernel.release")
mkdir -p "$root/lib/modules/$release"
: >"$root/lib/modules/$release/modules.dep"
cp "$TOP/scripts/guest/$script" "$root/init"
chmod +x "$root/init"
printf '%s\n' "$*" >"$root/params"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$TOP/build/initramfs.cpio.gz"

mkdir -p "$(dirname "$log")"
accel="-accel tcg"
[ "${QEMU_KVM:-0}" = 1 ] && accel="-accel kvm"
# shellcheck disable=SC2086
timeout --foreground "${QEMU_TIMEOUT:-900}" qemu-system-x86_64 $accel -cpu max -smp 4 -m 1G \
	-kernel "$kdir/arch/x86/boot/bzImage" -initrd "$TOP/build/initramfs.cpio.gz" \
	-append "console=ttyS0 loglevel=7 panic=-1 rdinit=/init ${QEMU_APPEND:-}" \
	-nographic -no-reboot -serial "file:$log" -monitor none -display none </dev/null
