#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make bench`: the same set-up and build as `make check` (the prologue in
# lib.sh, with the test module), then one QEMU boot (TCG) that first loads
# the test module to run the KVM benchmark suite (KUnit
# tdx_sept_guard_bench_kvm: KVM's real tdx_sept_set_private_spte() with
# and without the hook on the simulated TDX module, and the hook's
# overhead), then loads the module for the simulated workload once per
# cell: each policy (kick_and_retry, upstream72, blind_retry) for 1, 2 and
# 4 vCPUs and three contention shapes (none, accept, zerostep), with fixed
# seeds. The host parses the serial log into build/bench/results.csv,
# prints a table with ratios against kick_and_retry and the targets, and
# draws PNG plots there.
#
# The SEAMCALL-cost sweep: the zerostep cells of BENCH_SWEEP_VCPUS vCPUs
# (default 2), every policy, again with the simulated SEAMCALL cost at
# BENCH_SWEEP_COSTS percent (default 50 and 200; 100 is the main table's
# cell, run here only when the main table lacks it), cells named
# POLICY-VCPUS-zerostep@PERCENT.
#
# The emulation slowdown: the fixed loop of rust/kunit/c/calibrate.c, built
# into the test module (timed in the guest kernel by the KVM benchmark
# suite) and, with scripts/calibrate-host.c, into a native host program
# that runs before and after the boot (build/bench/calibrate-host.txt).
#
# BENCH_OPS (guest accesses per vCPU and cell), BENCH_SEED and
# BENCH_VCPUS / BENCH_POLICIES / BENCH_SHAPES narrow or change the run.
# Everything measured is the simulator under emulation: a model, see
# Documentation/performance.rst.

. "$(dirname "$0")/lib.sh"

MATPLOTLIB_VERSION=3.10.8
ops=${BENCH_OPS:-3000}
seed=${BENCH_SEED:-1}
vcpus_list=${BENCH_VCPUS:-1 2 4}
policies=${BENCH_POLICIES:-kick_and_retry upstream72 blind_retry}
shapes=${BENCH_SHAPES:-none accept zerostep}
# A cell that has not finished after this many seconds is cut short.
cap=${BENCH_CAP_S:-120}
# Under TCG an emulated CPU can go unscheduled on the host for longer than
# the module's default 100 ms: that is the emulator, not a vCPU ignoring
# its kick. (Real KVM waits for a kick without any deadline.)
kick_timeout_ms=${BENCH_KICK_TIMEOUT_MS:-1000}

start=$(date +%s)
# The test module holds the KVM benchmark suite; the cells load the module.
prologue tests
if PYTHONPATH=$TOOLS_DIR/py python3 -c 'import matplotlib' 2>/dev/null; then
	step "matplotlib: present"
else
	step "installing matplotlib $MATPLOTLIB_VERSION (PyPI) into $TOOLS_DIR/py"
	python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore \
		--target "$TOOLS_DIR/py" "matplotlib==$MATPLOTLIB_VERSION"
fi
out=$TOP/build/bench
mkdir -p "$out"

# The contention shapes, as module parameters.
shape_params() {
	case $1 in
	none) echo "contention=0,guest_run=1" ;;
	# 90% of the accesses go to 8 pages that every guest accepts.
	accept) echo "contention=90,guest_run=1" ;;
	# Guests accept runs of 16 pages at one RIP: from the 7th faulting
	# page of a run on, the TDX module's zero-step mitigation is engaged.
	zerostep) echo "contention=0,guest_run=16" ;;
	*) die "unknown shape $1" ;;
	esac
}

cells="cap=$cap"
n=0
# add_cell NAME POLICY VCPUS SHAPE [EXTRA_PARAMS]
add_cell() {
	cells="$cells $1,vcpus=$3,ops=$ops,seed=$seed,policy=$2"
	cells="$cells,kick_timeout_ms=$kick_timeout_ms,$(shape_params "$4")${5:+,$5}"
	n=$((n + 1))
}
for shape in $shapes; do
	for vcpus in $vcpus_list; do
		for policy in $policies; do
			add_cell "$policy-$vcpus-$shape" "$policy" "$vcpus" "$shape"
		done
	done
done
sweep_vcpus=${BENCH_SWEEP_VCPUS-2}
sweep_costs=${BENCH_SWEEP_COSTS-50 200}
if [ -n "$sweep_vcpus" ] && [ -n "$sweep_costs" ]; then
	case " $shapes " in *" zerostep "*) in_shapes=1 ;; *) in_shapes=0 ;; esac
	case " $vcpus_list " in *" $sweep_vcpus "*) in_vcpus=1 ;; *) in_vcpus=0 ;; esac
	[ "$in_shapes$in_vcpus" = 11 ] || sweep_costs="$sweep_costs 100"
	for cost in $sweep_costs; do
		for policy in $policies; do
			add_cell "$policy-$sweep_vcpus-zerostep@$cost" "$policy" "$sweep_vcpus" zerostep \
				"seamcall_cost_pct=$cost"
		done
	done
fi

# The emulation slowdown's host side: the same loop natively, before and
# after the boot (the minimum of both is the host's time).
calibrate=$out/calibrate-host
calibrate_log=$out/calibrate-host.txt
: >"$calibrate_log"
host_calibrate() {
	[ -x "$calibrate" ] || return 0
	echo "$("$calibrate" 7) when=$1" >>"$calibrate_log" ||
		step "the host's calibration run failed"
}
if gcc -O2 -Wall -o "$calibrate" "$TOP/scripts/calibrate-host.c" \
	"$TOP/rust/kunit/c/calibrate.c"; then
	step "timing the calibration loop natively (build/bench/calibrate-host.txt)"
	host_calibrate before
else
	rm -f "$calibrate"
	step "gcc could not build scripts/calibrate-host.c: no emulation slowdown in this run"
fi

step "booting QEMU: $n cells, $ops guest accesses per vCPU each (log: build/bench/bench.log)"
rc=0
# printk.devkmsg=on: the guest prints a few thousand lines through /dev/kmsg.
# kunit.filter_glob: the test module's insmod runs the KVM benchmark suite
# only (the module the cells load has no KUnit suites).
# shellcheck disable=SC2086
QEMU_APPEND="kunit.filter_glob=tdx_sept_guard_bench_kvm printk.devkmsg=on" QEMU_TIMEOUT=${QEMU_TIMEOUT:-1500} \
	"$TOP/scripts/qemu.sh" "$KDIR" bench "$out/bench.log" $cells || rc=$?
[ "$rc" = 0 ] || step "QEMU exited with $rc (124: timed out)"
grep -q 'tdx-sept-guard-bench: done' "$out/bench.log" || step "the guest did not finish all cells"
host_calibrate after

rc=0
PYTHONPATH=$TOOLS_DIR/py python3 "$TOP/scripts/bench.py" "$out/bench.log" "$out" \
	--expect "$n" --kvm --plots --host-calibrate "$calibrate_log" || rc=$?
[ "$BUILD_OK" = 1 ] ||
	step "note: the module build with W=e failed (build/module-build.log); this run used the build without it"
step "make bench took $(($(date +%s) - start)) s"
exit "$rc"
