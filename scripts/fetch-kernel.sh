#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Fetches Debian's linux-source-$KERNEL_SERIES from the suite that carries it
# ($KERNEL_SUITE, see lib.sh) through a private apt configuration (the
# system's own sources are never touched) and unpacks it under the cache.
# Prints the source directory on the last line.

. "$(dirname "$0")/lib.sh"

PKG=linux-source-$KERNEL_SERIES
APT_DIR=$CACHE_DIR/apt-$KERNEL_SUITE

# Reuse the mirror the system already uses for Debian; only the suite differs.
mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
	sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)\/*$/\1/p' | sed -n 1p || true)
[ -n "$mirror" ] || mirror=$(cat /etc/apt/sources.list 2>/dev/null |
	sed -n 's/^deb[[:space:]]\+\([^[:space:]]*\/debian\)\/*[[:space:]].*/\1/p' | sed -n 1p || true)
[ -n "$mirror" ] || die "cannot find the system's Debian mirror in /etc/apt"

mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/archives/partial"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $KERNEL_SUITE main" \
	>"$APT_DIR/sources.list"
apt_opts="-o Dir::Etc::SourceList=$APT_DIR/sources.list
	-o Dir::Etc::SourceParts=/dev/null
	-o Dir::State::Lists=$APT_DIR/lists
	-o Dir::Cache::Archives=$APT_DIR/archives
	-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
	-o APT::Sandbox::User=root"

# A cached, unpacked tree of the pinned version needs no network at all.
if [ -n "$KERNEL_PIN" ] && [ -f "$CACHE_DIR/src/linux-$KERNEL_PIN/Makefile" ]; then
	step "kernel source $KERNEL_PIN: cached"
	echo "$CACHE_DIR/src/linux-$KERNEL_PIN"
	exit 0
fi

step "reading the $KERNEL_SUITE package list (private apt configuration)"
# shellcheck disable=SC2086
apt-get -qq $apt_opts update >&2

# shellcheck disable=SC2086
versions=$(apt-cache $apt_opts madison "$PKG" | awk -F'|' '{gsub(/ /,"",$2); print $2}')
[ -n "$versions" ] || die "$PKG is not in $KERNEL_SUITE any more"
version=""
if [ -n "$KERNEL_PIN" ]; then
	version=$(printf '%s\n' "$versions" | grep -x "$KERNEL_PIN" || true)
fi
if [ -z "$version" ]; then
	version=$(printf '%s\n' "$versions" | sort -V | tail -n1)
	[ -z "$KERNEL_PIN" ] ||
		step "pinned $PKG $KERNEL_PIN has left the archive: taking the newest, $version"
fi

src=$CACHE_DIR/src/linux-$version
if [ -f "$src/Makefile" ]; then
	step "kernel source $version: cached"
	echo "$src"
	exit 0
fi

step "downloading $PKG $version"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# shellcheck disable=SC2086
(cd "$tmp" && apt-get -qq $apt_opts download "$PKG=$version" >&2)
dpkg-deb -x "$tmp"/"$PKG"_*.deb "$tmp/deb"
step "unpacking $PKG $version"
mkdir -p "$tmp/src"
tar -C "$tmp/src" -xf "$tmp/deb/usr/src/$PKG.tar.xz"
mkdir -p "$CACHE_DIR/src"
rm -rf "$src"
mv "$tmp/src/$PKG" "$src"
echo "$src"
