#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make scale-model`: builds and runs the host scale model in release mode
# (rust/scale-model: threads for vCPUs over the policy core, modelled time;
# a MODEL, not a measurement; see Documentation/scale-model.rst). The table
# goes to stdout and to build/bench/scale-model.csv; arguments go to the
# binary (`--help` lists them).

. "$(dirname "$0")/lib.sh"

out=$TOP/build/bench/scale-model.csv
mkdir -p "$(dirname "$out")"
step "building the scale model (release)"
cd "$TOP/rust/scale-model"
cargo build --locked --release --quiet
exec target/release/scale-model --csv "$out" "$@"
