#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Host-side tests of the pure-Rust policy crate: unit tests, proptest, then
# the loom models (their own build with --cfg loom). Writes cargo's output to
# build/host-test.log and prints `host: N passed, N failed`.

. "$(dirname "$0")/lib.sh"

crate=$TOP/rust/policy
log=$TOP/build/host-test.log
mkdir -p "$TOP/build"
: >"$log"
status=0

step "host tests: cargo test (unit + proptest)"
(cd "$crate" && cargo test --locked 2>&1) | tee -a "$log" | grep -E '^test result|FAILED|panicked' || true
[ "${PIPESTATUS[0]}" = 0 ] || status=1

step "host tests: loom models"
(cd "$crate" && RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
	cargo test --locked --release --test loom 2>&1) | tee -a "$log" | grep -E '^test result|FAILED|panicked' || true
[ "${PIPESTATUS[0]}" = 0 ] || status=1

step "host tests: cargo clippy -D warnings, cargo fmt --check"
if (cd "$crate" && cargo clippy --locked --all-targets -q -- -D warnings 2>&1 &&
	cargo fmt --check 2>&1) >>"$log"; then
	:
else
	tail -n 30 "$log"
	echo "FAILED: clippy or rustfmt (see build/host-test.log)"
	status=1
fi

passed=$(sed -n 's/^test result: .* \([0-9]\+\) passed; \([0-9]\+\) failed.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(sed -n 's/^test result: .* \([0-9]\+\) passed; \([0-9]\+\) failed.*/\2/p' "$log" | awk '{s+=$1} END {print s+0}')
# A build failure runs no test at all: count it as a failure.
[ "$status" = 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "host: $passed passed, $failed failed"
exit $status
