#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The DKMS check of `make check`: Debian's dkms builds and installs the
# module from dkms.conf, as an operator would, for a kernel whose build
# directory is a distribution-style headers tree:
#
#   scripts/dkms-check.sh KDIR
#
# KDIR is the cached test kernel's build tree. The headers tree made from it
# (scripts/make-extmod-tree.sh, cached by scripts/extmod-check.sh) is placed
# as /lib/modules/<release>/build of the test kernel's release, and its
# source tree as /usr/src/linux-source-<release>, where dkms.conf looks for
# KVM's internal headers; the sources go to /usr/src/tdx-sept-guard-<version>.
# Then `dkms add`, `dkms build -k <release>`, `dkms install -k <release>`,
# and the installed module is checked. Everything is removed afterwards
# (dkms remove, the directories and links it made). It refuses to run, and
# touches nothing, when any of those already exists: it never changes a real
# kernel's or an operator's installation. Needs root and dkms
# (scripts/setup-host.sh installs it). Log: build/dkms.log.

. "$(dirname "$0")/lib.sh"

[ $# = 1 ] || die "usage: $0 KDIR"
kdir=$(realpath "$1")
tree=$CACHE_DIR/extmod/$(basename "$kdir")
log=$TOP/build/dkms.log
mkdir -p "$TOP/build"
: >"$log"
[ "$(id -u)" = 0 ] || die "the DKMS check needs root (it writes /usr/src, /lib/modules and /var/lib/dkms)"
command -v dkms >/dev/null || die "dkms is missing: run scripts/setup-host.sh"
[ -f "$tree/.tdx-sept-guard-extmod" ] || die "no headers tree at $tree: scripts/extmod-check.sh makes it"

name=tdx-sept-guard
version=$(sed -n 's/^TSG_VERSION := //p' "$TOP/rust/Kbuild")
conf_version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$TOP/dkms.conf")
[ "$conf_version" = "$version" ] ||
	die "dkms.conf's PACKAGE_VERSION is '$conf_version', rust/Kbuild's TSG_VERSION '$version'"
release=$(cat "$tree/include/config/kernel.release")
moddir=/lib/modules/$release
srcdir=/usr/src/$name-$version
ksrc_link=/usr/src/linux-source-$release
for p in "$moddir" "$srcdir" "$ksrc_link" "/var/lib/dkms/$name"; do
	[ ! -e "$p" ] && [ ! -L "$p" ] || die "$p exists: the DKMS check places its own there and leaves it alone"
done
made_lib_modules=
[ -d /lib/modules ] || made_lib_modules=1
mok_before=$(ls /var/lib/dkms/mok.* 2>/dev/null || true)

cleanup() {
	dkms remove -m "$name" -v "$version" --all >>"$log" 2>&1 || true
	rm -rf "$moddir" "$srcdir" "/var/lib/dkms/$name"
	rm -f "$ksrc_link"
	[ -z "$made_lib_modules" ] || rmdir /lib/modules 2>/dev/null || true
	# A signing key dkms made for this run.
	[ -n "$mok_before" ] || rm -f /var/lib/dkms/mok.key /var/lib/dkms/mok.pub
}
trap cleanup EXIT

step "dkms: $name $version for kernel $release: its build directory the headers tree (log: build/dkms.log)"
"$TOP/scripts/copy-sources.sh" "$srcdir"
mkdir -p "$moddir"
ln -s "$tree" "$moddir/build"
ln -s "$(realpath "$kdir/source")" "$ksrc_link"

failed=0
run() {
	printf '$ %s\n' "$*" >>"$log"
	"$@" >>"$log" 2>&1 || {
		tail -n 30 "$log"
		echo "FAILED: dkms: $*"
		failed=1
	}
}
run dkms add -m "$name" -v "$version"
[ "$failed" = 1 ] || run dkms build -m "$name" -v "$version" -k "$release"
# dkms's make log: in the build directory if the build failed, else moved
# to the kernel's log directory.
for f in "/var/lib/dkms/$name/$version/build/make.log" "/var/lib/dkms/$name/$version/$release"/*/log/make.log; do
	[ ! -f "$f" ] || { echo "--- $f" && cat "$f"; } >>"$log"
done
[ "$failed" = 1 ] || run dkms install -m "$name" -v "$version" -k "$release"
run dkms status -m "$name" -v "$version"

if [ "$failed" = 0 ]; then
	ko=$(find "$moddir/updates" -name 'tdx_sept_guard.ko*' 2>/dev/null | head -n1)
	if [ -z "$ko" ]; then
		echo "FAILED: dkms: no tdx_sept_guard.ko installed under $moddir/updates"
		failed=1
	else
		magic=$(modinfo -F vermagic "$ko")
		have=$(modinfo -F version "$ko")
		printf 'installed: %s\nvermagic: %s\nversion: %s\n' "$ko" "$magic" "$have" >>"$log"
		step "dkms: installed ${ko#"$moddir"/} (version $have, vermagic $magic)"
		if [ "${magic%% *}" != "$release" ] || [ "$have" != "$version" ]; then
			echo "FAILED: dkms: the installed module is for '${magic%% *}', version '$have'"
			failed=1
		fi
	fi
	# The test module is never built by DKMS.
	if find "/var/lib/dkms/$name" -name 'tdx_sept_guard_kunit*.ko*' | grep -q .; then
		echo "FAILED: dkms: the test module was built"
		failed=1
	fi
fi
[ "$failed" = 0 ]
