#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Copies the module's sources, without build products, to DEST (replaced
# if it exists), for a build that must not touch this tree's (the
# distribution-style build of make check, the DKMS check):
#
#   scripts/copy-sources.sh DEST
#
# In a git checkout: what git tracks and the new files it does not ignore.
# Otherwise: the tree without build/, cargo's target/ and Kbuild's products.

. "$(dirname "$0")/lib.sh"

[ $# = 1 ] || die "usage: $0 DEST"
dest=$(realpath -m "$1")
case $dest/ in "$TOP"/rust/* | "$TOP"/scripts/* | "$TOP"/) die "DEST=$dest is inside the sources" ;; esac
rm -rf "$dest"
mkdir -p "$dest"
cd "$TOP" || exit
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# (--ignore-failed-read: a tracked file deleted in the work tree.)
	git ls-files -z --cached --others --exclude-standard |
		tar -c --null --ignore-failed-read -T - -f - 2>/dev/null | tar -x -f - -C "$dest"
else
	tar -c -f - --exclude=./build --exclude=target --exclude='*.o' --exclude='*.ko' \
		--exclude='*.mod' --exclude='*.mod.c' --exclude='.*.cmd' --exclude='*.a' \
		--exclude='.*.d' --exclude='*.rmeta' --exclude=modules.order --exclude=Module.symvers \
		--exclude='bindings_generated.rs' . | tar -x -f - -C "$dest"
fi
[ -f "$dest/rust/Kbuild" ] || die "copying the sources to $dest failed"
