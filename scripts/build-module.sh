#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds tdx_sept_guard.ko against KDIR (default: the cached test kernel,
# built first if needed). Extra arguments are Kbuild targets (clean,
# rust-analyzer). Refuses a KDIR that cannot build a Rust module, with the
# reason, instead of failing deep inside Kbuild. CLIPPY=1 (clippy) and W=...
# (W=e: warnings are errors) in the environment are passed to Kbuild.

. "$(dirname "$0")/lib.sh"

if [ -z "${KDIR:-}" ]; then
	KDIR=$("$TOP/scripts/build-kernel.sh" | tail -n1)
fi
[ -d "$KDIR" ] || die "KDIR=$KDIR does not exist"

if [ "${1:-}" != clean ]; then
	[ -f "$KDIR/.config" ] && [ -f "$KDIR/include/config/auto.conf" ] ||
		die "KDIR=$KDIR is not a configured kernel build tree (no .config / include/config/auto.conf)"
	grep -q '^CONFIG_RUST=y' "$KDIR/.config" ||
		die "KDIR=$KDIR was built without CONFIG_RUST=y; this module is written in Rust"
	[ -f "$KDIR/Module.symvers" ] ||
		die "KDIR=$KDIR has no Module.symvers: build its 'modules' target first"
	[ -f "$KDIR/rust/libkernel.rmeta" ] || [ -f "$KDIR/rust/kernel.o" ] ||
		die "KDIR=$KDIR has no Rust artifacts (rust/): a full kernel build tree is needed, distribution headers are not enough"
	# The kernel records the rustc it was built with; crates of another rustc
	# cannot be linked together.
	want=$(sed -n 's/^CONFIG_RUSTC_VERSION=//p' "$KDIR/include/config/auto.conf")
	have=$(rustc --version | awk '{split($2, v, "."); printf "%d", v[1] * 100000 + v[2] * 100 + v[3]}')
	[ "$want" = "$have" ] ||
		die "KDIR=$KDIR was built with rustc version code $want, but $(rustc --version) is $have; use the same rustc"
	grep -q '^CONFIG_KUNIT=y' "$KDIR/.config" ||
		step "note: KDIR has no CONFIG_KUNIT=y; the module's KUnit suites are compiled out"
fi

# Kbuild takes CLIPPY and W only from its command line (it checks
# "$(origin ...)"), not from the environment: hand them on.
args=()
[ -z "${CLIPPY:-}" ] || args+=("CLIPPY=$CLIPPY")
[ -z "${W:-}" ] || args+=("W=$W")
exec make -C "$KDIR" M="$TOP" "${args[@]}" ${1:+"$1"}
