#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Formats the module's Rust sources with the kernel's rustfmt settings and
# the policy and scale-model crates with cargo fmt; with --check, only
# reports.

. "$(dirname "$0")/lib.sh"

check=""
[ "${1:-}" = --check ] && check=--check
if [ -z "${KDIR:-}" ]; then
	KDIR=$("$TOP/scripts/build-kernel.sh" | tail -n1)
fi
config=$KDIR/source/.rustfmt.toml
[ -f "$config" ] || config=$KDIR/.rustfmt.toml
[ -f "$config" ] || die "no .rustfmt.toml in KDIR=$KDIR"
# The two crate roots (the shipped module's, the test module's) pull in
# every other file through their `mod` items.
rustfmt $check --edition 2021 --config-path "$config" \
	"$TOP/rust/tdx_sept_guard_main.rs" "$TOP/rust/tdx_sept_guard_kunit_main.rs"
(cd "$TOP/rust/policy" && cargo fmt $check)
(cd "$TOP/rust/scale-model" && cargo fmt $check)
