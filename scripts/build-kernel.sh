#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Builds the test kernel (tinyconfig + kernel/test-kernel.config) out of tree
# into the cache, unless a build with the same key is already there. Prints
# the build directory (the module's KDIR) on the last line. V=1 shows the
# kernel's own make output.

. "$(dirname "$0")/lib.sh"

src=$("$TOP/scripts/fetch-kernel.sh" | tail -n1)
version=$(basename "$src" | sed 's/^linux-//')
build=$(kernel_build_dir "$version")
stamp=$build/.tdx-sept-guard-built
frag=$TOP/kernel/test-kernel.config

if [ -f "$stamp" ]; then
	step "test kernel: cached ($build)"
	echo "$build"
	exit 0
fi

mkdir -p "$build"
log=$build/build.log
: >"$log"
run_make() {
	if [ "${V:-0}" = 1 ]; then
		make -C "$src" O="$build" "$@" 2>&1 | tee -a "$log" >&2
	else
		make -C "$src" O="$build" "$@" >>"$log" 2>&1
	fi
}

step "checking the Rust toolchain (make rustavailable)"
make -C "$src" O="$build" rustavailable >>"$log" 2>&1 || {
	tail -n 20 "$log" >&2
	die "the kernel refuses this Rust toolchain; run scripts/setup-host.sh"
}

step "configuring: tinyconfig + kernel/test-kernel.config"
run_make tinyconfig
"$src/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" "$frag" >>"$log" 2>&1
run_make olddefconfig

# Kconfig silently drops options whose dependencies are unmet: refuse that.
dropped=""
while IFS= read -r line; do
	case "$line" in CONFIG_*=*) ;; *) continue ;; esac
	grep -qx "$line" "$build/.config" || dropped="$dropped ${line}"
done <"$frag"
[ -z "$dropped" ] || die "Kconfig dropped or changed:$dropped (see $build/.config)"
step "config verified: every fragment option is set"

start=$(date +%s)
step "building bzImage and modules with $(nproc) jobs (log: $log)"
if [ "${V:-0}" != 1 ]; then
	# One progress line a minute, so a long build is visibly alive.
	( while sleep 60; do
		printf '    ... %d objects built so far\n' "$(grep -c '^  CC\|^  RUSTC' "$log")" >&2
	done ) &
	ticker=$!
	trap 'kill $ticker 2>/dev/null' EXIT
fi
run_make -j"$(nproc)" bzImage modules || {
	tail -n 40 "$log" >&2
	die "kernel build failed (full log: $log)"
}
step "test kernel built in $(( $(date +%s) - start )) s"
touch "$stamp"
echo "$build"
