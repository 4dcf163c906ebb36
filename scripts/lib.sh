# SPDX-License-Identifier: GPL-2.0
# Shared settings for the tdx-sept-guard scripts. Sourced, never run.

set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
CACHE_DIR=${TDX_SEPT_GUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tdx-sept-guard}
TOOLS_DIR=$CACHE_DIR/tools

# The kernel this project is tested against. If the archive no longer has
# this exact version, fetch-kernel.sh takes the newest 7.2.x and says so.
KERNEL_SERIES=7.2
KERNEL_PIN=${KERNEL_PIN:-7.2.13-1}

step() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Tools installed by setup-host.sh live outside the system paths.
PATH=$TOOLS_DIR/cargo/bin:$HOME/.cargo/bin:$PATH
export PATH


# libclang from the PyPI wheel is what bindgen loads (Debian 12's is too old).
if [ -z "${LIBCLANG_PATH:-}" ] && [ -f "$TOOLS_DIR/py/clang/native/libclang.so" ]; then
	LIBCLANG_PATH=$TOOLS_DIR/py/clang/native
	export LIBCLANG_PATH
fi

# The cache key of a test kernel: source version, config fragment, rustc.
kernel_build_dir() {
	frag_hash=$(sha256sum "$TOP/kernel/test-kernel.config" | cut -c1-12)
	rustc_ver=$(rustc --version | awk '{print $2}')
	echo "$CACHE_DIR/kernel/linux-$1-cfg$frag_hash-rustc$rustc_ver"
}
