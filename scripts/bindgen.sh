#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Generates the Rust declarations of the module's C side from its headers,
# against the kernel tree the module is built against. Called by rust/Kbuild:
#
#   scripts/bindgen.sh SET OBJTREE SRCTREE KSRC HEADER OUT
#
# KSRC is the kernel source tree KVM's internal headers are taken from
# (SRCTREE itself for a full build tree; see rust/Kbuild).
# SET is what to generate from HEADER:
#
# - kvm: the KVM backend's bindings to KVM's internal TDX types (struct
#   kvm_tdx, vcpu_tdx, kvm, kvm_vcpu) and the declarations of its own C
#   functions (rust/kvm/bindings.h: kvm_internal.h and helpers.h), for
#   rust/kvm/bindings.rs.
# - platform: the declarations of the platform's C functions and the types
#   they share with Rust (rust/platform/helpers.h), for rust/platform/ffi.rs.
#   The kernel's types they take are left to the kernel crate's bindings
#   (kernel::bindings), which the including module imports: one Rust type
#   for each kernel type.
# - kunit: the declarations of the test module's own C functions and
#   constants that no other set has (rust/kunit/c/calibrate.h: the
#   emulation-slowdown loop of `make bench`), for rust/kunit/ffi.rs.
#
# It runs bindgen with the very flags the kernel used for its own bindings
# (saved by Kbuild in OBJTREE/rust/bindings/.bindings_generated.rs.cmd), so
# the layout is the kernel's. bindgen's layout tests stay on: they become
# compile-time assertions, and a mismatch fails the build, not the host.
# That file names the kernel's source tree as it was when the kernel was
# built; in a headers tree made from that build (a distribution's package,
# scripts/make-extmod-tree.sh) those headers are in SRCTREE now, and the
# recorded path is replaced by it.
set -euo pipefail

set=$1 objtree=$2 srctree=$3 ksrc=$4 header=$5 out=$6
cmdfile=$objtree/rust/bindings/.bindings_generated.rs.cmd
[ -f "$cmdfile" ] || {
	echo "bindgen.sh: $cmdfile is missing: KDIR needs the kernel's Rust metadata, its bindgen command included" >&2
	exit 1
}
# Everything after " -- " up to the first ";" are the C flags; drop the
# dependency-file and module-name flags of the kernel's own invocation.
flags=$(sed -n 's/^savedcmd_[^ ]* := .* -- //p' "$cmdfile" |
	sed 's/ ;.*//; s/-Wp,-MMD,[^ ]*//; s/-DKBUILD_[A-Z]*=[^ ]*//g; s/-D__KBUILD_MODNAME=[^ ]*//')
[ -n "$flags" ] || { echo "bindgen.sh: no bindgen flags in $cmdfile" >&2; exit 1; }
srctree=$(realpath "$srctree")
ksrc=$(realpath "$ksrc")
# The kernel's bindgen input is RECORDED/rust/bindings/bindings_helper.h.
recorded=$(sed -n 's|^savedcmd_[^ ]* := [^ ]* \(/[^ ]*\)/rust/bindings/bindings_helper\.h .*|\1|p' "$cmdfile")
if [ -n "$recorded" ] && [ "$recorded" != "$srctree" ]; then
	flags=${flags//"$recorded"/$srctree}
fi
header=$(realpath "$header")
out=$(realpath -m "$out")

case $set in
kvm)
	# Types the backend only holds by pointer or never touches are opaque:
	# their size and alignment are kept, their insides are not generated.
	opaque='kvm_arch|kvm_vcpu_arch|kvm_vcpu_stat|kvm_vm_stat|vcpu_vt|tdx_module_args|tdx_td|tdx_vp'
	opaque+='|mutex|srcu_struct|xarray|rwlock_t|spinlock_t|spinlock|raw_spinlock|rcuwait|preempt_notifier'
	opaque+='|kvm_memslots|kvm_io_bus|mmu_notifier|kvm_dirty_ring|kvm_mmu_memory_cache|hlist_head'
	opaque+='|list_head|wait_queue_head|kvm_memory_slot|rcu_head|work_struct|kvm_stat_data|kvm_run'
	opaque+='|task_struct|pid|file|dentry|misc_cg|mm_struct|kvm_stats_desc|kvm_coalesced_mmio_ring'
	opaque+='|refcount_struct|kvm_irq_routing_table|notifier_block|kvm_page_fault|kvm_gfn_range'
	opaque+='|gfn_to_pfn_cache|hrtimer|irq_work|kvm_mmio_fragment|wait_queue_entry|kvm_dirty_gfn'
	opaque+='|.*_ops|kvm_stat.*|kvm_io_device|.*cgroup.*|seqcount.*|rb_root.*|kref|kvm_sigset'
	opaque+='|pid_namespace|user_namespace|ns_common.*'
	args=(--allowlist-type 'kvm_tdx|vcpu_tdx' --allowlist-var 'TD_STATE_.*'
		--allowlist-function 'tsg_.*' --opaque-type "$opaque")
	[ -f "$ksrc/arch/x86/kvm/vmx/tdx.h" ] || {
		echo "bindgen.sh: KSRC=$ksrc has no arch/x86/kvm/vmx/tdx.h: KVM's internal headers come from the kernel's source tree" >&2
		exit 1
	}
	cflags=(-I"$ksrc/arch/x86/kvm" -I"$ksrc/arch/x86/kvm/vmx")
	;;
platform)
	# The kernel's types, by the kernel crate's names: not generated here.
	kernel_types='dentry|lock_class_key|rwlock|rwlock_t|seq_file|task_struct|workqueue_struct'
	args=(--allowlist-function 'tsg_.*' --allowlist-type 'tsg_.*'
		--blocklist-type "$kernel_types")
	cflags=()
	;;
kunit)
	args=(--allowlist-function 'tsg_.*' --allowlist-var 'TSG_.*')
	cflags=()
	;;
*)
	echo "bindgen.sh: unknown set '$set' (kvm, platform or kunit)" >&2
	exit 1
	;;
esac

# shellcheck disable=SC2086
cd "$objtree" && "${BINDGEN:-bindgen}" "$header" \
	--use-core --ctypes-prefix ffi --rust-target 1.85 --no-doc-comments \
	"${args[@]}" \
	-o "$out" -- $flags -DKBUILD_MODNAME='"tdx_sept_guard"' "${cflags[@]}"
