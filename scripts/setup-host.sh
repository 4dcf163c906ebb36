#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Installs what building the test kernel, the module and running QEMU needs.
# Idempotent: every step checks first and says what it does.

. "$(dirname "$0")/lib.sh"

BINDGEN_VERSION=0.72.1
LIBCLANG_WHEEL_VERSION=18.1.1
DEB_PACKAGES="bc bison flex libelf-dev libssl-dev cpio busybox-static
	qemu-system-x86 xz-utils make gcc python3 kmod dkms"

missing=""
for p in $DEB_PACKAGES; do
	[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	step "installing Debian packages:$missing"
	[ "$(id -u)" = 0 ] || die "installing packages needs root (missing:$missing)"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
else
	step "Debian packages: present"
fi

mkdir -p "$TOOLS_DIR"

if [ -f "$TOOLS_DIR/py/clang/native/libclang.so" ]; then
	step "libclang: present"
else
	step "installing libclang $LIBCLANG_WHEEL_VERSION (PyPI wheel) into $TOOLS_DIR/py"
	python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore \
		--target "$TOOLS_DIR/py" "libclang==$LIBCLANG_WHEEL_VERSION"
fi

bindgen_have=$("$TOOLS_DIR/cargo/bin/bindgen" --version 2>/dev/null || true)
if [ "$bindgen_have" = "bindgen $BINDGEN_VERSION" ]; then
	step "bindgen $BINDGEN_VERSION: present"
else
	step "building bindgen-cli $BINDGEN_VERSION from crates.io (a few minutes)"
	cargo install -q --locked --root "$TOOLS_DIR/cargo" bindgen-cli --version "$BINDGEN_VERSION"
fi

installed=$(rustup component list --installed 2>/dev/null || true)
if printf '%s\n' "$installed" | grep -q '^rust-src'; then
	step "rust-src: present"
else
	step "adding rust-src for $(rustc --version)"
	rustup component add rust-src
fi
