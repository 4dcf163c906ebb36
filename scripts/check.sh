#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make check`: installs what is missing, builds (or reuses) the test kernel,
# builds the module and the test module (the prologue in lib.sh), builds
# the module again against a distribution-style headers tree and with
# Debian's dkms (scripts/extmod-check.sh, scripts/dkms-check.sh), runs the
# host tests, the KUnit suites in QEMU (with the coexistence runs: the KVM
# suites beside other ftrace users) and the interface checks in a second
# boot (which loads both builds of the module), and ends with `N passed,
# N failed` over both layers. Non-zero exit on any failure, missing suite,
# or kernel splat.

. "$(dirname "$0")/lib.sh"

start=$(date +%s)
prologue tests
build_ok=$BUILD_OK

step "checking that the shipped module holds no test code (nm)"
# The suites, the fake TD, the SEAMCALL stand-ins, the benchmark suite and
# the trace recording live in tdx_sept_guard_kunit.ko only.
test_syms=$(nm "$TOP/rust/tdx_sept_guard.ko" | grep -E 'kunit|fake|bench|scenario|tsg_trace_record|Recording' || true)
nm_ok=1
if [ -n "$test_syms" ]; then
	printf '%s\n' "$test_syms" | head -n 20
	echo "FAILED: test symbols in the shipped module"
	nm_ok=0
fi

# The distribution-style build: against a headers tree as distributions
# package one (install-extmod-build + the Rust metadata), KVM's headers from
# the kernel's source; the interface boot loads the module it makes.
extmod_ok=0 dkms_ok=0
if "$TOP/scripts/extmod-check.sh" "$KDIR"; then
	extmod_ok=1
	# The same tree as a kernel release's build directory, for dkms.
	if "$TOP/scripts/dkms-check.sh" "$KDIR"; then
		dkms_ok=1
	else
		echo "FAILED: the DKMS check (log: build/dkms.log)"
	fi
else
	echo "FAILED: the distribution-style build; the DKMS check did not run (log: build/extmod-build.log)"
fi

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
# The coexistence runs: the KVM suites (this KUnit filter_glob) again, each
# time beside another ftrace user on KVM's tdx_sept_set_private_spte().
coexist_glob='tdx_sept_guard_kvm*'
coexist_tracers=(function function_graph kprobe kretprobe)
coexist_args=(--coexist-glob "$coexist_glob")
for t in "${coexist_tracers[@]}"; do coexist_args+=(--coexist "$t"); done
step "running the KUnit suites in QEMU, then the KVM suites beside ${coexist_tracers[*]} (log: build/check.log)"
qemu_rc=0
# The test module takes no parameters: the guest gets the coexistence runs.
# printk.devkmsg=on: the guest's markers go through /dev/kmsg, unthrottled.
QEMU_APPEND="printk.devkmsg=on" \
	"$TOP/scripts/qemu.sh" "$KDIR" check "$TOP/build/check.log" "glob=$coexist_glob" "${coexist_tracers[@]}" ||
	qemu_rc=$?
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
	--kunit "$KDIR/source/tools/testing/kunit/kunit.py" $suites "${coexist_args[@]}") &&
	kunit_ok=1 || kunit_ok=0
printf '%s\n' "$kunit_out"
kunit_line=$(printf '%s\n' "$kunit_out" | tail -n1)

# The interface boot ran tdx-host-check's module-side steps (mode=sim) and
# put what they collected in its log: the tool's own checks judge it, one
# test, which only a PASS passes (INCOMPLETE, 4, would mean the busy run
# injected nothing).
step "judging the interface boot's tdx-host-check runs (report: build/host-check.txt)"
judge_rc=0
python3 "$TOP/scripts/tdx-host-check" --judge "$TOP/build/interface.log" >"$TOP/build/host-check.txt" 2>&1 ||
	judge_rc=$?
grep -E '^(run |  FAIL|verdict:)' "$TOP/build/host-check.txt" || true
judge_ok=0
[ "$judge_rc" = 0 ] && judge_ok=1

count() { printf '%s\n' "$1" | sed -n "s/.* \([0-9]\+\) $2.*/\1/p"; }
passed=$(( $(count "$host_line" passed) + $(count "$kunit_line" passed) + judge_ok ))
failed=$(( $(count "$host_line" failed) + $(count "$kunit_line" failed) + 1 - judge_ok ))
# A failure that is not a test result (missing suite, splat, timeout) still fails the run.
if [ "$build_ok$nm_ok$extmod_ok$dkms_ok$fmt_ok$host_ok$kunit_ok" != 1111111 ] && [ "$failed" = 0 ]; then failed=1; fi
step "make check took $(( $(date +%s) - start )) s"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
