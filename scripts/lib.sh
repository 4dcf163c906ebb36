# SPDX-License-Identifier: GPL-2.0
# Shared settings for the tdx-sept-guard scripts. Sourced, never run.

set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
CACHE_DIR=${TDX_SEPT_GUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tdx-sept-guard}
TOOLS_DIR=$CACHE_DIR/tools

step() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The kernel series this project is tested against (KERNEL=, from make;
# default the newest), each with its pinned Debian linux-source version and
# the Debian suite that carries it. If the archive no longer has the pinned
# version, fetch-kernel.sh takes the newest of the series and says so.
# KERNEL_PIN= in the environment overrides the pin.
KERNEL_SUPPORTED="7.2 7.3"
KERNEL_SERIES=${KERNEL:-${KERNEL_SUPPORTED##* }}
# shellcheck disable=SC2034 # KERNEL_SUITE is fetch-kernel.sh's
case $KERNEL_SERIES in
7.2) KERNEL_SUITE=sid kernel_pin=7.2.13-1 ;;
7.3) KERNEL_SUITE=trixie-backports kernel_pin=7.3.4-1~bpo13+1 ;;
*) die "KERNEL=$KERNEL_SERIES is not supported; supported: $KERNEL_SUPPORTED" ;;
esac
KERNEL_PIN=${KERNEL_PIN:-$kernel_pin}

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

# prologue TESTS: what `make check`, `make run` and `make bench` do first.
# Sets the machine up (setup-host.sh), builds or reuses the test kernel
# and exports KDIR, then builds the module with clippy and warnings as
# errors (CLIPPY=1 W=e; Kbuild's scripts/Makefile.warn adds -Werror for C
# and -Dwarnings for Rust, so a compiler or clippy warning fails the
# build), log in build/module-build.log. If that fails, the errors are
# shown, BUILD_OK is set to 0 and the module is built again without W=e,
# so that the tests still run; only a build that fails then stops here.
# TESTS=tests adds the test module, rust/tdx_sept_guard_kunit.ko
# (TSG_TESTS=1); TESTS=no-tests builds the shipped module alone and
# removes a test module left by an earlier build, so that none goes into
# the guest.
prologue() {
	local tests=$1 flag what=tdx_sept_guard.ko test_ko=$TOP/rust/tdx_sept_guard_kunit.ko
	case $tests in
	tests)
		flag=1
		what="tdx_sept_guard.ko and tdx_sept_guard_kunit.ko"
		;;
	no-tests) flag= ;;
	*) die "prologue: tests or no-tests, not '$tests'" ;;
	esac
	"$TOP/scripts/setup-host.sh"
	KDIR=$("$TOP/scripts/build-kernel.sh" | tail -n1)
	export KDIR
	mkdir -p "$TOP/build"
	# shellcheck disable=SC2034 # the caller's
	BUILD_OK=1
	[ "$tests" = tests ] || rm -f "$test_ko"
	step "building $what with clippy, warnings as errors (log: build/module-build.log)"
	TSG_TESTS=$flag CLIPPY=1 W=e "$TOP/scripts/build-module.sh" >"$TOP/build/module-build.log" 2>&1 || {
		# (grep finding nothing, or stopped by head, is no reason to stop.)
		grep -E -A12 '(^|: )error' "$TOP/build/module-build.log" | head -n 60 || true
		echo "FAILED: the module build with W=e (a warning is an error there)"
		# shellcheck disable=SC2034 # the caller's
		BUILD_OK=0
		# Still run the tests: build again without W=e; only a real error stops here.
		step "building again without W=e, to run the tests (log: build/module-build-nowerror.log)"
		TSG_TESTS=$flag CLIPPY=1 "$TOP/scripts/build-module.sh" >"$TOP/build/module-build-nowerror.log" 2>&1 || {
			cat "$TOP/build/module-build-nowerror.log" >&2
			die "module build failed"
		}
	}
	# modules.order lists what this build made.
	if [ "$tests" = tests ] && ! grep -q tdx_sept_guard_kunit "$TOP/modules.order" 2>/dev/null; then
		echo "FAILED: TSG_TESTS=1 built no rust/tdx_sept_guard_kunit.ko (see rust/Kbuild)"
		# shellcheck disable=SC2034 # the caller's
		BUILD_OK=0
	fi
}
