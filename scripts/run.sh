#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make run`: the same set-up and build as `make check` (the prologue in
# lib.sh), without the test module; then boots QEMU, loads the module
# (parameters from RUN_PARAMS, default mode=sim), prints its debugfs
# counters a few times while it works, unloads it and powers off.

. "$(dirname "$0")/lib.sh"

# The shipped module alone: the test module is `make check`'s.
prologue no-tests
step "booting QEMU (log: build/run.log)"
rc=0
# The shipped module has no KUnit suites; kunit.enable=0 keeps KUnit quiet.
# shellcheck disable=SC2086
QEMU_APPEND="kunit.enable=0 ${QEMU_APPEND:-}" QEMU_TIMEOUT=${QEMU_TIMEOUT:-300} "$TOP/scripts/qemu.sh" "$KDIR" run "$TOP/build/run.log" \
	${RUN_PARAMS:-mode=sim} || rc=$?
# Show what the guest said, without the kernel's boot chatter.
sed -n 's/.*tdx-sept-guard-run: //p' "$TOP/build/run.log"
[ "$rc" = 0 ] || die "QEMU exited with $rc (124: timed out); see build/run.log"
grep -q 'tdx-sept-guard-run: powering off' "$TOP/build/run.log" ||
	die "the guest did not finish; see build/run.log"

# The viewer needs Python, which the busybox guest has not: show the guest's
# last reading of the files through it, from a copy on the host.
snap=$TOP/build/run-debugfs
rm -rf "$snap"
mkdir -p "$snap"
tr -d "\r" <"$TOP/build/run.log" | sed -n "s/.*tdx-sept-guard-run: //p" |
	awk -v dir="$snap" '
		/^--- .* after [0-9]+s ---$/ { n++; next }
		n && /^[a-z_]+: / {
			file = $1; sub(/:$/, "", file); line = $0; sub(/^[a-z_]+: /, "", line)
			out[file, n] = out[file, n] line "\n"; files[file] = 1
		}
		END { for (f in files) printf "%s", out[f, n] > (dir "/" f) }'
step "the guest's last reading, as scripts/tdx-sept-stat --once shows it"
python3 "$TOP/scripts/tdx-sept-stat" --root "$snap" --once --delay 0
[ "$BUILD_OK" = 1 ] ||
	step "note: the module build with W=e failed (build/module-build.log); this run used the build without it"
