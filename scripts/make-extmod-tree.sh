#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Makes an external-module build tree, as distributions package one, from a
# full kernel build tree:
#
#   scripts/make-extmod-tree.sh BUILD DEST
#
# BUILD is a built kernel tree (O= build directory with its `source` link,
# or an in-tree build). DEST receives:
#
# - what the kernel's own scripts/package/install-extmod-build installs
#   (the tree Debian's linux-headers-*, Fedora's kernel-devel and Arch's
#   linux-headers packages ship): Makefile, scripts/, include/, arch/x86's
#   include/ and Makefiles, the generated headers, include/config/auto.conf,
#   Module.symvers, objtool;
# - the Rust metadata a Rust module is compiled against, which that script
#   leaves out (what Ubuntu's linux-lib-rust-* package adds): the crates'
#   metadata (rust/*.rmeta), the proc-macro libraries (rust/*.so), the
#   kernel crate's generated assembly snippets its macros include
#   (rust/kernel/generated_arch_*_asm.rs), the inline helpers' bitcode
#   (rust/helpers/helpers_module.bc, with CONFIG_RUST_INLINE_HELPERS), and
#   the kernel's bindgen command (rust/bindings/.bindings_generated.rs.cmd),
#   whose C flags scripts/bindgen.sh uses for the module's own bindings;
# - .config, which header packages carry too.
#
# KVM's internal headers (arch/x86/kvm/, arch/x86/virt/) are NOT in it, as
# in no header package: the module takes them from the source tree (KSRC).
# DEST is replaced if it exists. Prints DEST on the last line.

. "$(dirname "$0")/lib.sh"

[ $# = 2 ] || die "usage: $0 BUILD DEST"
build=$(realpath "$1")
dest=$(realpath -m "$2")
for f in include/config/auto.conf Module.symvers; do
	[ -f "$build/$f" ] || die "$build is not a built kernel tree (no $f)"
done
[ -f "$build/rust/libkernel.rmeta" ] ||
	die "$build has no Rust metadata (rust/libkernel.rmeta): build the kernel with CONFIG_RUST=y first"
if [ -e "$build/source" ]; then src=$(realpath "$build/source"); else src=$build; fi
installer=$src/scripts/package/install-extmod-build
[ -x "$installer" ] || die "$installer is missing (a kernel older than 6.8?)"

rm -rf "$dest"
mkdir -p "$dest"
# As the kernel's rpm spec file calls it: through the build's Makefile, which
# sets srctree, SRCARCH, CC and HOSTCC (run-command needs no configuration
# step and builds nothing when CC is HOSTCC).
make -s -C "$build" run-command KBUILD_RUN_COMMAND="$installer $dest" ||
	die "install-extmod-build failed"

# The Rust metadata, after the installer, which deletes every .*.cmd file.
(
	cd "$build" || exit
	{
		find rust -maxdepth 1 \( -name '*.rmeta' -o -name '*.so' \)
		find rust/kernel -maxdepth 1 -name 'generated_arch_*_asm.rs'
		[ ! -f rust/helpers/helpers_module.bc ] || echo rust/helpers/helpers_module.bc
		echo rust/bindings/.bindings_generated.rs.cmd
		echo .config
	} | tar -c -f - -T -
) | tar -x -f - -C "$dest"
echo "$dest"
