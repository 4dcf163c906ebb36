// SPDX-License-Identifier: GPL-2.0

//! The KVM TDX backend: the policy in KVM's own S-EPT map path.
//!
//! KVM 7.2 maps private memory with `tdp_mmu_set_spte_atomic()`, which
//! freezes the mirror SPTE (`FROZEN_SPTE`) and calls `set_external_spte`,
//! i.e. `tdx_sept_set_private_spte()`, under the read side of `mmu_lock`. A
//! busy TDH.MEM.PAGE.AUG or TDH.MEM.SEPT.ADD comes back as `-EBUSY`, KVM
//! unfreezes the SPTE and re-faults, in a loop with no kick and no bound.
//! This backend redirects `tdx_sept_set_private_spte()` (ftrace, IPMODIFY)
//! and runs the map call under the policy while the SPTE is still frozen:
//! on busy it raises KVM's own entry gate (`kvm_tdx->wait_for_sept_zap`),
//! kicks the vCPUs in guest mode with IPIs it waits for against a deadline,
//! and calls the original once more; a second busy stops the VM. Unmap calls
//! (present old SPTE) go straight through: KVM already kicks and retries
//! once there (`tdh_do_no_vcpus()`). See `Documentation/attach.rst`.

mod attach;
mod auto;
#[cfg(tsg_tests)]
mod bench;
mod bindings;
mod entry;
mod executor;
pub(crate) mod hooks;
#[cfg(tsg_tests)]
mod kunit;
mod shape;
mod state;
mod vm;

use crate::policy::counters::counter_table;
pub(crate) use attach::AttachOptions;
#[cfg(tsg_tests)]
use attach::Unavailable;
#[cfg(not(tsg_tests))]
pub(crate) use attach::{
    attach,
    MAX_KICK_TIMEOUT_US, //
};
#[cfg(tsg_tests)]
use attach::{
    KvmBackend,
    TARGET,
    VM_INIT, //
};
#[cfg(not(tsg_tests))]
pub(crate) use auto::attach_auto;
#[cfg(tsg_tests)]
use kernel::prelude::*;

/// For the test module: whether this host is one where redirecting KVM's
/// functions (as the suites do) cannot touch a real TD: not a TDX host
/// platform, and KVM has no VM. Says why not.
#[cfg(tsg_tests)]
pub(crate) fn test_host_check() -> Result {
    if hooks::tdx_host_platform() {
        pr_err!("this CPU is a TDX host platform: KVM may run TDs here\n");
        return Err(EPERM);
    }
    match hooks::nr_vms() {
        Some(0) => Ok(()),
        Some(n) => {
            pr_err!("KVM has {} VM(s) running\n", n);
            Err(EBUSY)
        }
        None => {
            pr_err!("KVM's VM list was not found, so no VM can be ruled out\n");
            Err(ENODEV)
        }
    }
}

counter_table! {
    counters = crate::policy::counters;
    /// What the attach layer saw, beside the policy's counters.
    pub(crate) struct AttachCounters<C> {
        /// Map calls (TDH.MEM.PAGE.AUG, SEPT.ADD, PAGE.ADD) run under the
        /// policy.
        kvm_map_calls: "kvm",
        /// Unmap calls (BLOCK, TRACK, REMOVE) passed straight through.
        kvm_unmap_calls: "kvm",
        /// Map calls passed through without the policy: the VM has no state
        /// (it could not be allocated, or the VM was created while the
        /// module attached and is being looked up).
        kvm_untracked_calls: "kvm",
        /// Map calls of a VM the module had stopped, failed at once.
        kvm_stopped_vm_calls: "kvm",
        /// VMs the backend stopped (second busy, or a kick timed out).
        kvm_vm_stops: "kvm",
    }
}
