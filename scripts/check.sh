#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make check`: installs what is missing, builds (or reuses) the test kernel,
# builds the module, runs the host tests and the module's KUnit suites in
# QEMU, and ends with `N passed, N failed` over both layers. Non-zero exit on
# any failure, missing suite, or kernel splat.

. "$(dirname "$0")/lib.sh"

start=$(date +%s)
"$TOP/scripts/setup-host.sh"
KDIR=$("$TOP/scripts/build-kernel.sh" | tail -n1)
export KDIR

step "building tdx_sept_guard.ko with clippy, warnings as errors (log: build/module-build.log)"
mkdir -p "$TOP/build"
# CLIPPY=1: Kbuild runs clippy with the kernel's own lint set. W=e: Kbuild's
# scripts/Makefile.warn adds -Werror for C and -Dwarnings for Rust, so any
# compiler or clippy warning fails the build.
build_ok=1
CLIPPY=1 W=e "$TOP/scripts/build-module.sh" >"$TOP/build/module-build.log" 2>&1 || {
	grep -E -A12 '(^|: )error' "$TOP/build/module-build.log" | head -n 60
	echo "FAILED: the module build with W=e (a warning is an error there)"
	build_ok=0
	# Still run the tests: build again without W=e; only a real error stops here.
	step "building again without W=e, to run the tests (log: build/module-build-nowerror.log)"
	CLIPPY=1 "$TOP/scripts/build-module.sh" >"$TOP/build/module-build-nowerror.log" 2>&1 || {
		cat "$TOP/build/module-build-nowerror.log" >&2
		die "module build failed"
	}
}

step "checking the module's formatting (kernel rustfmt settings)"
fmt_ok=1
"$TOP/scripts/rustfmt.sh" --check >"$TOP/build/rustfmt.log" 2>&1 || {
	head -n 40 "$TOP/build/rustfmt.log"
	echo "FAILED: not formatted; run 'make rustfmt'"
	fmt_ok=0
}

host_out=$("$TOP/scripts/host-test.sh") && host_ok=1 || host_ok=0
printf '%s\n' "$host_out"
host_line=$(printf '%s\n' "$host_out" | tail -n1)

# Every suite declared in the sources must show up in the guest's KTAP.
suites=$(grep -rhoE '#\[kunit_tests\(tdx_sept_guard[a-z0-9_]*\)\]' "$TOP/rust" |
	sed 's/.*(\(.*\)).*/--suite \1/')
step "running the KUnit suites in QEMU (log: build/check.log)"
qemu_rc=0
# mode=idle: the suites start their own simulated VMs; no background workload.
"$TOP/scripts/qemu.sh" "$KDIR" check "$TOP/build/check.log" ${TSG_PARAMS:-mode=idle} || qemu_rc=$?
[ "$qemu_rc" = 0 ] || step "QEMU exited with $qemu_rc (124: timed out)"
step "checking the module's interface in QEMU (log: build/interface.log)"
qemu_rc=0
# printk.devkmsg=on: the guest writes its KTAP through /dev/kmsg, unthrottled.
# kunit.autorun=0: no empty KUnit KTAP header at each insmod amid the guest's.
QEMU_APPEND="kunit.enable=0 kunit.autorun=0 printk.devkmsg=on" QEMU_TIMEOUT=${QEMU_TIMEOUT:-300} \
	"$TOP/scripts/qemu.sh" "$KDIR" interface "$TOP/build/interface.log" || qemu_rc=$?
[ "$qemu_rc" = 0 ] || step "QEMU exited with $qemu_rc (124: timed out)"
# shellcheck disable=SC2086
kunit_out=$(python3 "$TOP/scripts/guest-log.py" "$TOP/build/check.log" \
	--interface "$TOP/build/interface.log" \
	--kunit "$KDIR/source/tools/testing/kunit/kunit.py" $suites) && kunit_ok=1 || kunit_ok=0
printf '%s\n' "$kunit_out"
kunit_line=$(printf '%s\n' "$kunit_out" | tail -n1)

count() { printf '%s\n' "$1" | sed -n "s/.* \([0-9]\+\) $2.*/\1/p"; }
passed=$(( $(count "$host_line" passed) + $(count "$kunit_line" passed) ))
failed=$(( $(count "$host_line" failed) + $(count "$kunit_line" failed) ))
# A failure that is not a test result (missing suite, splat, timeout) still fails the run.
if [ "$build_ok$fmt_ok$host_ok$kunit_ok" != 1111 ] && [ "$failed" = 0 ]; then failed=1; fi
step "make check took $(( $(date +%s) - start )) s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
