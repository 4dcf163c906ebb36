#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Host-side tests of the pure-Rust policy crate: unit tests and proptest,
# the loom models (their own build, with --cfg loom), then clippy and
# rustfmt; the same three for the scale model (rust/scale-model, which
# runs the policy crate with threads for vCPUs); then the scripts' own
# Python tests (scripts/tests). Writes cargo's and unittest's output to
# build/host-test.log and ends with `host: N passed, N failed`, the sum of
# both.

. "$(dirname "$0")/lib.sh"

crate=$TOP/rust/policy
scale_model=$TOP/rust/scale-model
log=$TOP/build/host-test.log
mkdir -p "$TOP/build"
: >"$log"
status=0

# Runs one step in directory $1; its output goes to the log.
run_in() {
	dir=$1
	name=$2
	shift 2
	step "host tests: $name"
	if ! (cd "$dir" && "$@") >>"$log" 2>&1; then
		tail -n 30 "$log"
		echo "FAILED: $name (see build/host-test.log)"
		status=1
	fi
}

# Runs one step in the crate.
run() { run_in "$crate" "$@"; }

run "cargo test (unit + proptest)" cargo test --locked
run "loom models" env RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
	cargo test --locked --release --test loom
run "cargo clippy -D warnings" cargo clippy --locked --all-targets -q -- -D warnings
run "cargo fmt --check" cargo fmt --check
run_in "$scale_model" "scale model: cargo test" cargo test --locked
run_in "$scale_model" "scale model: cargo clippy -D warnings" \
	cargo clippy --locked --all-targets -q -- -D warnings
run_in "$scale_model" "scale model: cargo fmt --check" cargo fmt --check
# No __pycache__ left in the tree.
run_in "$TOP" "python unittest (scripts/tests)" \
	env PYTHONDONTWRITEBYTECODE=1 python3 -m unittest discover -s scripts/tests -v

grep -E '^test result|^Ran [0-9]+ tests? in |^(OK|FAILED)( \(.*\))?$' "$log" || true
results() { sed -n "s/^test result: .* \([0-9]\+\) passed; \([0-9]\+\) failed.*/\\$1/p" "$log" | awk '{s+=$1} END {print s+0}'; }
# unittest's summary: `Ran N tests in ...`, then `OK`, `OK (skipped=s)` or
# `FAILED (failures=a, errors=b, skipped=s, ...)`. Prints `passed failed`;
# skipped tests are neither.
unittest_results() {
	awk '
	/^Ran [0-9]+ tests? in / { ran += $2 }
	/^(OK|FAILED)( \(.*\))?$/ {
		s = $0
		while (match(s, /[a-z ]+=[0-9]+/)) {
			split(substr(s, RSTART, RLENGTH), kv, "=")
			s = substr(s, RSTART + RLENGTH)
			sub(/^ +/, "", kv[1])
			if (kv[1] == "failures" || kv[1] == "errors" || kv[1] == "unexpected successes")
				bad += kv[2]
			else if (kv[1] == "skipped")
				skipped += kv[2]
		}
	}
	END { print ran - bad - skipped, bad + 0 }' "$log"
}
read -r py_passed py_failed < <(unittest_results)
passed=$(($(results 1) + py_passed))
failed=$(($(results 2) + py_failed))
# A step that failed without a failed test (a build error, a lint) still fails.
[ "$status" = 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "host: $passed passed, $failed failed"
exit $status
