// SPDX-License-Identifier: GPL-2.0

//! The functions the C side calls (`helpers.c`): the redirected map call and
//! the probes' handlers. The one place where a raw pointer from KVM becomes
//! a [`Td`] or a vCPU of one, and where [`ACTIVE`] is read.

use super::attach::{
    ACTIVE,
    CLAIMED, //
};
use super::bindings::{
    kvm,
    kvm_vcpu,
    Td, //
};
use super::hooks;
use super::state::KvmState;
use crate::policy::{
    CounterCell,
    Leaf,
    Status, //
};
use core::ffi::c_int;
use kernel::{prelude::*, sync::atomic::Acquire};

/// The attached backend's state, if any.
///
/// Callers are the redirected calls, the probe handlers and the backend's
/// work: `KvmBackend`'s drop removes the redirections and every probe,
/// waiting for calls and handlers in progress, and flushes the work, before
/// it clears `ACTIVE` and frees the state.
fn active<'a>() -> Option<&'a KvmState> {
    let state = match ACTIVE.load(Acquire) {
        CLAIMED => return None,
        ptr => ptr as *const KvmState,
    };
    // SAFETY: `ACTIVE` holds NULL, `CLAIMED` or a live `KvmState`, alive
    // until after every caller of this function has returned (see above).
    unsafe { state.as_ref() }
}

/// The replacement for `tdx_sept_set_private_spte()` (through `helpers.c`).
///
/// # Safety
///
/// Called only by the redirected `tdx_sept_set_private_spte()`, with KVM's
/// arguments: `kvm` a live TD, `mmu_lock` held.
#[no_mangle]
unsafe extern "C" fn tsg_kvm_set_private_spte(
    kvm: *mut kvm,
    gfn: u64,
    old: u64,
    new: u64,
    level: c_int,
) -> c_int {
    // SAFETY: KVM passes a live TD (the caller's contract).
    let td = unsafe { Td::from_kvm(kvm) };
    match (td, active()) {
        (Some(td), Some(backend)) => {
            if hooks::is_shadow_present(old) {
                backend.attach.local().kvm_unmap_calls.add(1);
                // SAFETY: KVM's own arguments, under KVM's own locks.
                unsafe { hooks::call_set_private_spte(backend.orig, td, gfn, old, new, level) }.0
            } else {
                backend.map(td, gfn, old, new, level)
            }
        }
        // Cannot happen: no redirection without a backend.
        _ => EIO.to_errno(),
    }
}

/// A kretprobe saw an unmap-leaf SEAMCALL wrapper return `raw`
/// (`probes.c`; `leaf` is its `TDH_*` number).
#[no_mangle]
extern "C" fn tsg_kvm_tdh_returned(leaf: u64, raw: u64) {
    let Some(leaf) = Leaf::from_number(leaf).filter(|l| l.is_unmap()) else {
        return;
    };
    let status = Status::from_raw(raw);
    if let Some(state) = active().filter(|_| status.is_busy_for(leaf)) {
        state.counters.count_busy(leaf, status);
    }
}

/// A SEAMCALL wrapper of leaf `leaf` (its `TDH_*` number) for the TD `kvm`
/// took `ns` (`probes.c`: the leaf kretprobes, with latency histograms on).
/// `kvm` is only a key: the wrapper's TD argument, never dereferenced.
#[no_mangle]
extern "C" fn tsg_kvm_leaf_time(kvm: *mut kvm, leaf: u64, ns: u64) {
    if let (Some(state), Some(leaf)) = (active(), Leaf::from_number(leaf)) {
        state.seamcall_time(kvm, leaf, ns);
    }
}

/// A private EPT violation of a TD vCPU (`kvm_page_fault` tracepoint).
#[no_mangle]
extern "C" fn tsg_kvm_zero_step_fault(vcpu: *mut kvm_vcpu, gpa: u64) {
    if let Some(state) = active() {
        #[cfg(tsg_tests)]
        state.hold_end_vcpu(vcpu);
        let verdict = state.zero_step(vcpu, |det, c| det.on_ept_violation(gpa, c));
        #[cfg(tsg_tests)]
        state.zero_step_hold(vcpu, gpa, verdict);
        #[cfg(not(tsg_tests))]
        let _ = verdict;
    }
}

/// A TD vCPU's TDH.VP.ENTER came back busy (`kvm_exit` tracepoint).
#[no_mangle]
extern "C" fn tsg_kvm_zero_step_enter_busy(vcpu: *mut kvm_vcpu, raw: u64) {
    if let Some(state) = active() {
        #[cfg(tsg_tests)]
        state.hold_end_vcpu(vcpu);
        state.zero_step(vcpu, |det, c| det.on_enter_status(Status::from_raw(raw), c));
    }
}

/// A TD vCPU exited for a reason other than an EPT violation (`kvm_exit`
/// tracepoint): it made progress, its fault streak ends.
#[no_mangle]
extern "C" fn tsg_kvm_zero_step_progress(vcpu: *mut kvm_vcpu) {
    if let Some(state) = active() {
        #[cfg(tsg_tests)]
        state.hold_end_vcpu(vcpu);
        state.zero_step(vcpu, |det, _| {
            det.on_progress();
            crate::policy::ZeroStepVerdict::Reenter
        });
    }
}

/// KVM created the TD `kvm` (`redirect.c`'s replacement for `vt_vm_init()`,
/// after the original succeeded): its state is made here, in process
/// context.
#[no_mangle]
extern "C" fn tsg_kvm_vm_created(kvm: *mut kvm) {
    // SAFETY: KVM passes the TD it is creating, alive for the call.
    if let (Some(state), Some(td)) = (active(), unsafe { Td::from_kvm(kvm) }) {
        state.vms.make(td);
    }
}

/// The work the map path queues when it meets a TD with no entry
/// ([`super::vm::Adopt`]): gives state to the TDs in KVM's VM list that have
/// none.
pub(super) fn adopt_tds() {
    if let Some(state) = active() {
        let _ = state.vms.adopt();
    }
}

/// KVM is destroying a VM (`helpers.c`'s kprobe on `kvm_arch_destroy_vm()`).
#[no_mangle]
pub(super) extern "C" fn tsg_kvm_vm_destroyed(kvm: *mut kvm) {
    if let Some(state) = active() {
        state.vms.destroyed(kvm as usize);
    }
}
