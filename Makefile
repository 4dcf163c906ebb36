# SPDX-License-Identifier: GPL-2.0
#
# tdx-sept-guard. Common targets:
#   make                     build tdx_sept_guard.ko (against the cached test kernel)
#   make KDIR=/path/to/build build it against your own Rust-enabled kernel build tree
#   make KDIR=<headers> KSRC=<source>  ... against a distribution's headers tree with
#                            the Rust metadata, KVM's internal headers from the source tree
#   make TSG_TESTS=1         also build the test module, tdx_sept_guard_kunit.ko
#                            (the KUnit suites; make check and make bench build it)
#   make KDIR=... install    build and install tdx_sept_guard.ko only (modules_install)
#   make check               set up, build, run host tests and KUnit suites in QEMU
#   make run                 set up, build, boot QEMU and show the module at work
#   make bench               set up, build, run the policy benchmark in QEMU (build/bench/)
#   make rust-analyzer       write rust-project.json for the module's sources
#   make rustfmt             format the Rust sources (rustfmtcheck: only check)
#   make scale-model         run the host scale model (a model, not a measurement);
#                            table on stdout, CSV in build/bench/scale-model.csv
#   make clean

# Kbuild reads ./Kbuild when it descends here; this file is only the front end.

KDIR ?=
# KERNEL=7.2 or 7.3: the test kernel's series (default the newest, see scripts/lib.sh).
KERNEL ?=
KSRC ?=
export KDIR KSRC KERNEL V

.PHONY: all modules install kernel setup check run bench host-test scale-model rust-analyzer rustfmt rustfmtcheck clean

all modules:
	@scripts/build-module.sh

# Kbuild's modules_install for this directory (INSTALL_MOD_PATH and
# INSTALL_MOD_DIR apply; then depmod). It installs what modules.order lists,
# so the module is built first without TSG_TESTS: the test module,
# tdx_sept_guard_kunit.ko, is never installed.
install:
	@TSG_TESTS= scripts/build-module.sh
	@TSG_TESTS= scripts/build-module.sh modules_install

setup:
	@scripts/setup-host.sh

kernel: setup
	@scripts/build-kernel.sh >/dev/null

host-test:
	@scripts/host-test.sh

check:
	@scripts/check.sh

run:
	@scripts/run.sh

# SCALE_MODEL_ARGS passes options to the binary (e.g. --kicks 200, --help).
scale-model:
	@scripts/scale-model.sh $(SCALE_MODEL_ARGS)

bench:
	@scripts/bench.sh

rust-analyzer:
	@scripts/build-module.sh rust-analyzer

rustfmt:
	@scripts/rustfmt.sh

rustfmtcheck:
	@scripts/rustfmt.sh --check

# Needs no kernel tree: removes Kbuild's products by name.
clean:
	rm -rf build rust/policy/target rust/scale-model/target rust-project.json
	find . -path ./.git -prune -o -type f \( -name '*.o' -o -name '*.ko' -o -name '*.mod' -o -name '*.mod.c' \
		-o -name '.*.cmd' -o -name '*.a' -o -name '.*.d' -o -name '*.rmeta' \
		-o -name modules.order -o -name Module.symvers \) -exec rm -f {} +
