#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Host-side tests of the pure-Rust policy crate: unit tests and proptest,
# the loom models (their own build, with --cfg loom), then clippy and
# rustfmt. Writes cargo's output to build/host-test.log and ends with
# `host: N passed, N failed`.

. "$(dirname "$0")/lib.sh"

crate=$TOP/rust/policy
log=$TOP/build/host-test.log
mkdir -p "$TOP/build"
: >"$log"
status=0

# Runs one step in the crate; its output goes to the log.
run() {
	name=$1
	shift
	step "host tests: $name"
	if ! (cd "$crate" && "$@") >>"$log" 2>&1; then
		tail -n 30 "$log"
		echo "FAILED: $name (see build/host-test.log)"
		status=1
	fi
}

run "cargo test (unit + proptest)" cargo test --locked
run "loom models" env RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
	cargo test --locked --release --test loom
run "cargo clippy -D warnings" cargo clippy --locked --all-targets -q -- -D warnings
run "cargo fmt --check" cargo fmt --check

grep -E '^test result' "$log" || true
results() { sed -n "s/^test result: .* \([0-9]\+\) passed; \([0-9]\+\) failed.*/\\$1/p" "$log" | awk '{s+=$1} END {print s+0}'; }
passed=$(results 1)
failed=$(results 2)
# A step that failed without a failed test (a build error, a lint) still fails.
[ "$status" = 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "host: $passed passed, $failed failed"
exit $status
