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
#
# KDIR may be a full build tree or an external-module build tree as
# distributions package one (scripts/package/install-extmod-build's output)
# with the kernel's Rust metadata added (Ubuntu's linux-lib-rust;
# scripts/make-extmod-tree.sh makes one). KVM's internal headers, which no
# header package carries, come from KSRC, the kernel's source tree: by
# default the build tree's own source (KDIR/source, or KDIR itself).

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
	release=$(cat "$KDIR/include/config/kernel.release" 2>/dev/null || echo '<release>')
	if [ ! -f "$KDIR/rust/libkernel.rmeta" ]; then
		[ ! -e "$KDIR/vmlinux" ] ||
			die "KDIR=$KDIR has no Rust metadata (rust/libkernel.rmeta): build the kernel first"
		die "KDIR=$KDIR is a headers tree without Rust metadata (rust/*.rmeta): install linux-lib-rust-$release, or make a tree with it from the kernel's build tree (scripts/make-extmod-tree.sh)"
	fi
	[ -f "$KDIR/rust/bindings/.bindings_generated.rs.cmd" ] ||
		die "KDIR=$KDIR has Rust metadata but not the kernel's bindgen command (rust/bindings/.bindings_generated.rs.cmd): copy it from the kernel's build tree (scripts/make-extmod-tree.sh does)"
	# The kernel records the rustc it was built with; crates of another rustc
	# (even another build of the same version) cannot be linked together.
	# (auto.conf has it unquoted, .config quoted.)
	want=$(sed -n 's/^CONFIG_RUSTC_VERSION_TEXT=//p' "$KDIR/include/config/auto.conf" | sed 's/^"\(.*\)"$/\1/')
	[ -n "$want" ] || die "KDIR=$KDIR records no CONFIG_RUSTC_VERSION_TEXT: a kernel older than this module supports"
	have=$("${RUSTC:-rustc}" --version 2>/dev/null || echo "no rustc")
	if [ "$want" != "$have" ]; then
		# A versioned rustc beside the default one (Ubuntu's rustc-1.NN).
		versioned=$(printf '%s\n' "$want" | sed -n 's/^rustc \([0-9]*\.[0-9]*\)\..*/rustc-\1/p')
		if [ -n "$versioned" ] && command -v "$versioned" >/dev/null &&
			[ "$("$versioned" --version)" = "$want" ]; then
			step "KDIR's kernel was built with $want, rustc is $have: using $versioned"
			RUSTC=$versioned
		else
			die "KDIR=$KDIR was built with $want, but the rustc in use is $have: build with the former (${versioned:-rustc-1.NN} on PATH is used if it is that one)"
		fi
	fi
	[ -z "${RUSTC:-}" ] || [ "$RUSTC" = rustc ] || command -v "$RUSTC" >/dev/null ||
		die "RUSTC=$RUSTC is not on PATH"

	# KVM's internal headers: from KSRC, by default the build tree's source.
	if [ -z "${KSRC:-}" ]; then
		if [ -e "$KDIR/source" ]; then KSRC=$(realpath "$KDIR/source"); else KSRC=$KDIR; fi
		ksrc_from="KDIR=$KDIR (no KSRC given)"
	else
		ksrc_from="KSRC=$KSRC"
	fi
	for h in arch/x86/kvm/vmx/tdx.h arch/x86/virt/vmx/tdx/tdx.h; do
		[ -f "$KSRC/$h" ] ||
			die "$ksrc_from has no $h: KVM's internal headers are in no header package; pass KSRC=<the source tree of kernel $release>"
	done
	# The source's version must be the kernel's (Makefile's VERSION,
	# PATCHLEVEL, SUBLEVEL; a headers tree carries the source's Makefile).
	kver() {
		[ ! -f "$1/Makefile" ] || awk '/^(VERSION|PATCHLEVEL|SUBLEVEL) =/ {v = v sep $3; sep = "."}
			/^EXTRAVERSION/ {print v; exit}' "$1/Makefile"
	}
	kdir_ver=$(kver "$KDIR")
	[ -n "$kdir_ver" ] || [ ! -e "$KDIR/source" ] || kdir_ver=$(kver "$KDIR/source")
	ksrc_ver=$(kver "$KSRC")
	[ -z "$kdir_ver" ] || [ -z "$ksrc_ver" ] || [ "$kdir_ver" = "$ksrc_ver" ] ||
		die "KSRC=$KSRC is Linux $ksrc_ver, KDIR=$KDIR is Linux $kdir_ver: KVM's headers must be the built kernel's"
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
[ -z "${KSRC:-}" ] || args+=("TSG_KSRC=$KSRC")
[ -z "${RUSTC:-}" ] || args+=("RUSTC=$RUSTC")
if [ "${1:-}" = modules_install ]; then
	[ -z "$tests" ] || die "the test module is never installed: run modules_install without TSG_TESTS"
	# modules_install installs what modules.order lists: the last build's.
	! grep -q 'tdx_sept_guard_kunit' "$TOP/modules.order" 2>/dev/null ||
		die "modules.order lists the test module: build without TSG_TESTS first (make install does)"
	[ -f "$TOP/modules.order" ] || die "no modules.order: build the module first (make install does)"
fi
exec make -C "$KDIR" M="$TOP" "${args[@]}" ${1:+"$1"}
