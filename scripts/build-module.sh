#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds rust/tdx_sept_guard.ko against KDIR (default: the cached test
# kernel, built first if needed). Extra arguments are Kbuild targets (clean,
# rust-analyzer, modules_install). Refuses a KDIR that cannot build a Rust
# module, with the reason, instead of failing deep inside Kbuild. CLIPPY=1
# (clippy) and W=... (W=e: warnings are errors) in the environment are
# passed to Kbuild; so is TSG_TESTS=1, as TSG_TESTS=y: it adds the test
# module, rust/tdx_sept_guard_kunit.ko (the KUnit suites), which is never
# installed.

. "$(dirname "$0")/lib.sh"

if [ -z "${KDIR:-}" ]; then
	KDIR=$("$TOP/scripts/build-kernel.sh" | tail -n1)
fi
[ -d "$KDIR" ] || die "KDIR=$KDIR does not exist"

# TSG_TESTS=1 (or y): the test module too.
case ${TSG_TESTS:-} in
1 | y) tests=y ;;
'' | 0 | n) tests= ;;
*) die "TSG_TESTS=$TSG_TESTS: use 1 (build the test module too) or leave it empty" ;;
esac

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
	[ -z "$tests" ] || grep -q '^CONFIG_KUNIT=y' "$KDIR/.config" ||
		die "KDIR=$KDIR has no CONFIG_KUNIT=y: the test module (TSG_TESTS=1) is KUnit suites"
fi

# Kbuild takes CLIPPY and W only from its command line (it checks
# "$(origin ...)"), not from the environment: hand them on.
args=()
[ -z "${CLIPPY:-}" ] || args+=("CLIPPY=$CLIPPY")
[ -z "${W:-}" ] || args+=("W=$W")
# TSG_TESTS always goes on the command line, empty when off: a value Kbuild
# could find in the environment or in an outer make's MAKEFLAGS must not
# decide which modules are built.
args+=("TSG_TESTS=$tests")
if [ "${1:-}" = modules_install ]; then
	[ -z "$tests" ] || die "the test module is never installed: run modules_install without TSG_TESTS"
	# modules_install installs what modules.order lists: the last build's.
	! grep -q 'tdx_sept_guard_kunit' "$TOP/modules.order" 2>/dev/null ||
		die "modules.order lists the test module: build without TSG_TESTS first (make install does)"
	[ -f "$TOP/modules.order" ] || die "no modules.order: build the module first (make install does)"
fi
exec make -C "$KDIR" M="$TOP" "${args[@]}" ${1:+"$1"}
