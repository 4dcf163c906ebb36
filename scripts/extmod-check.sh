#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The distribution-style build of `make check`:
#
#   scripts/extmod-check.sh KDIR
#
# From KDIR, the cached test kernel's build tree, makes an external-module
# build tree as distributions package one (scripts/make-extmod-tree.sh;
# cached beside the kernel, under the same key), then builds the shipped
# module against it, with warnings as errors, from a copy of the sources
# in build/extmod/src (so that this tree's build is not touched), with KVM's
# internal headers from the kernel's source tree (KSRC). Copies the module
# to build/extmod/tdx_sept_guard.ko, which scripts/qemu.sh puts into the
# guest for the interface boot to load. Also checks that such a tree is
# refused, with the reason, without KSRC and without its Rust metadata.
# Log: build/extmod-build.log. Non-zero exit on any failure.

. "$(dirname "$0")/lib.sh"

[ $# = 1 ] || die "usage: $0 KDIR"
kdir=$(realpath "$1")
ksrc=$(realpath "$kdir/source")
tree=$CACHE_DIR/extmod/$(basename "$kdir")
out=$TOP/build/extmod
log=$TOP/build/extmod-build.log
rm -rf "$out"
mkdir -p "$out"
: >"$log"

# The kernel's stamp is newer than the tree's if the kernel was rebuilt.
if [ "$tree/.tdx-sept-guard-extmod" -nt "$kdir/.tdx-sept-guard-built" ]; then
	step "extmod: headers tree cached ($tree)"
else
	step "extmod: making a headers tree from the test kernel (install-extmod-build + Rust metadata)"
	"$TOP/scripts/make-extmod-tree.sh" "$kdir" "$tree" >>"$log" 2>&1 || {
		tail -n 20 "$log"
		die "making the headers tree failed"
	}
	touch "$tree/.tdx-sept-guard-extmod"
fi
# What makes it a headers tree: no KVM internals, no kernel objects.
for f in arch/x86/kvm arch/x86/virt vmlinux source; do
	[ ! -e "$tree/$f" ] || die "the headers tree $tree has $f"
done

"$TOP/scripts/copy-sources.sh" "$out/src"
failed=0

# expect_refusal NAME MESSAGE [VAR=VALUE...]: the build against the
# headers tree with these settings fails with MESSAGE in one error line.
expect_refusal() {
	local name=$1 message=$2 got
	shift 2
	got=$(env "$@" "$out/src/scripts/build-module.sh" 2>&1 >/dev/null | grep '^error: ' || true)
	printf '%s\n' "$got" >>"$log"
	if [ "$(printf '%s\n' "$got" | grep -c -F "$message")" != 1 ]; then
		echo "FAILED: extmod: $name: expected one error line with '$message', got: ${got:-nothing}"
		failed=1
	fi
}
step "extmod: a headers tree without KSRC, or without Rust metadata, is refused"
# ksrc=: no KSRC from the environment either.
expect_refusal "no KSRC" "pass KSRC=" KDIR="$tree" KSRC=
norust=$out/no-rust
mkdir -p "$norust"
for e in "$tree"/* "$tree"/.config; do
	[ "${e##*/}" = rust ] || ln -s "$e" "$norust/"
done
expect_refusal "no Rust metadata" "a headers tree without Rust metadata" KDIR="$norust" KSRC="$ksrc"

step "extmod: building tdx_sept_guard.ko against it, KSRC the kernel's source (log: build/extmod-build.log)"
if KDIR=$tree KSRC=$ksrc TSG_TESTS='' CLIPPY='' W=e "$out/src/scripts/build-module.sh" >>"$log" 2>&1 &&
	[ -f "$out/src/rust/tdx_sept_guard.ko" ]; then
	cp "$out/src/rust/tdx_sept_guard.ko" "$out/tdx_sept_guard.ko"
	# Every kernel header the build read is the tree's; only KVM's are the source's.
	others=$(cat "$out"/src/rust/.*.cmd "$out"/src/rust/*/.*.cmd | grep -o "$ksrc/[^ ]*" |
		grep -v -e "^$ksrc/arch/x86/kvm" -e "^$ksrc/arch/x86/virt" | sort -u || true)
	if [ -n "$others" ]; then
		printf '%s\n' "$others" | head -n 10
		echo "FAILED: extmod: the build read these from KSRC, not from the headers tree"
		failed=1
	fi
else
	grep -E -A12 '(^|: )error' "$log" | head -n 60 || true
	echo "FAILED: extmod: the build against the headers tree"
	failed=1
fi
[ "$failed" = 0 ]
