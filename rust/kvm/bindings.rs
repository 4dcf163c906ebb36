// SPDX-License-Identifier: GPL-2.0

//! KVM's internal TDX types, as bindgen generates them at build time from
//! the headers of the kernel tree the module is built against
//! (`scripts/bindgen.sh`, driven by `rust/Kbuild`). Only this module
//! touches the generated code; the rest of the backend uses [`Td`] and
//! [`Vcpu`], which read the few fields it needs.
//!
//! bindgen's layout tests are on: each generated struct carries
//! compile-time assertions of its size, alignment and field offsets as
//! clang computed them from the kernel's headers, so a kernel whose structs
//! differ from what the generated Rust would assume fails the build.

use core::marker::PhantomData;
use core::ptr::{
    addr_of,
    addr_of_mut,
    NonNull, //
};

#[allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    unreachable_pub,
    missing_docs,
    improper_ctypes,
    unsafe_op_in_unsafe_fn,
    unnecessary_transmutes,
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    clippy::ptr_as_ptr,
    clippy::ref_as_ptr,
    clippy::cast_lossless,
    clippy::as_underscore,
    clippy::ptr_offset_with_cast
)]
mod generated {
    use kernel::ffi;
    include!("bindings_generated.rs");
}

pub(crate) use generated::{
    kvm,
    kvm_tdx,
    kvm_vcpu, //
};

/// The backend's own C functions, declared by bindgen from `helpers.h`: the
/// only declarations of them on the Rust side.
pub(crate) mod ffi {
    /// What only the test module uses: its fixtures (`fake_td.c`, built
    /// into it only) and the VM count it checks before redirecting.
    #[cfg(tsg_tests)]
    pub(crate) use super::generated::{
        tsg_fake_counting_ops_register,
        tsg_fake_counting_ops_unregister,
        tsg_fake_external_spte_op_set,
        tsg_fake_fail_nth,
        tsg_fake_fail_nth_pending,
        tsg_fake_nonpresent_spte,
        tsg_fake_now_ns,
        tsg_fake_preempt_disable,
        tsg_fake_preempt_enable,
        tsg_fake_present_leaf_spte,
        tsg_fake_seamcall_wrapper,
        tsg_fake_td_free,
        tsg_fake_td_listed,
        tsg_fake_td_new,
        tsg_fake_td_read_lock,
        tsg_fake_td_read_unlock,
        tsg_fake_td_set_private_spte,
        tsg_fake_td_vm_init,
        tsg_fake_td_write_lock,
        tsg_fake_td_write_unlock,
        tsg_fake_trace_busy_enter,
        tsg_fake_trace_exit,
        tsg_fake_trace_page_fault,
        tsg_fake_vcpu_enter,
        tsg_fake_vcpu_exit,
        tsg_fake_vcpu_kicked,
        tsg_fake_vcpu_vm_dead_requested, //
        tsg_fake_vendor_event,
        tsg_kvm_nr_vms,
    };
    pub(crate) use super::generated::{
        tsg_kvm_call_set_private_spte,
        tsg_kvm_destroy_probe_missed,
        tsg_kvm_destroy_probe_register,
        tsg_kvm_destroy_probe_unregister,
        tsg_kvm_external_spte_op,
        tsg_kvm_fineibt_guarded,
        tsg_kvm_for_each_new_td,
        tsg_kvm_ftrace_jumps_to_list_func,
        tsg_kvm_get_vcpu,
        tsg_kvm_has_endbr,
        tsg_kvm_ibt_enabled,
        tsg_kvm_is_last_spte,
        tsg_kvm_is_shadow_present,
        tsg_kvm_leaf_probes_register,
        tsg_kvm_leaf_probes_unregister,
        tsg_kvm_lookup,
        tsg_kvm_max_vcpus,
        tsg_kvm_online_vcpus,
        tsg_kvm_request_vm_dead,
        tsg_kvm_set_private_spte_replacement,
        tsg_kvm_synchronize_rcu,
        tsg_kvm_tdx_host_platform,
        tsg_kvm_tdx_param,
        tsg_kvm_tracepoints_register,
        tsg_kvm_tracepoints_unregister,
        tsg_kvm_unwatch_owner,
        tsg_kvm_vcpu_exiting_guest_mode,
        tsg_kvm_vcpu_kvm,
        tsg_kvm_vendor_is_module,
        tsg_kvm_vendor_unwatch,
        tsg_kvm_vendor_watch,
        tsg_kvm_vm_init_quiesce,
        tsg_kvm_vm_init_replacement,
        tsg_kvm_watch_owner,
        tsg_redirect,
        tsg_redirect_disable,
        tsg_redirect_enable,
        tsg_redirect_free,
        tsg_redirect_new,
        tsg_vm_for_each,
        tsg_vm_insert,
        tsg_vm_lookup,
        tsg_vm_remove,
        tsg_vm_remove_any, //
    };
}

/// `TD_STATE_RUNNABLE` of `enum kvm_tdx_state`.
pub(crate) const TD_STATE_RUNNABLE: generated::kvm_tdx_state =
    generated::kvm_tdx_state_TD_STATE_RUNNABLE;

/// A TD as KVM hands it to `tdx_sept_set_private_spte()`: a `struct kvm`
/// that is the first member of a `struct kvm_tdx`.
///
/// # Invariants
///
/// `ptr` points to a `struct kvm_tdx` that stays alive for `'a`; its `kvm`
/// member is the `struct kvm` KVM passes around.
#[derive(Clone, Copy)]
pub(crate) struct Td<'a> {
    ptr: NonNull<kvm_tdx>,
    _life: PhantomData<&'a kvm_tdx>,
}

// The `struct kvm` is the first member: `to_kvm_tdx()` is a cast.
const _: () = assert!(core::mem::offset_of!(kvm_tdx, kvm) == 0);

impl<'a> Td<'a> {
    /// # Safety
    ///
    /// `kvm` is the `struct kvm` of a live TD (`struct kvm_tdx`) for `'a`.
    pub(crate) unsafe fn from_kvm(kvm: *mut kvm) -> Option<Self> {
        // INVARIANT: By the caller's contract, and `kvm` is the first member.
        NonNull::new(kvm.cast::<kvm_tdx>()).map(|ptr| Self {
            ptr,
            _life: PhantomData,
        })
    }

    /// The `struct kvm`.
    pub(crate) fn kvm(self) -> *mut kvm {
        self.ptr.as_ptr().cast()
    }

    /// `kvm_tdx->state`.
    pub(crate) fn state(self) -> generated::kvm_tdx_state {
        // SAFETY: The TD is live (type invariant); KVM writes `state` under
        // locks this path does not hold, so read it once, as `READ_ONCE()`.
        unsafe { addr_of!((*self.ptr.as_ptr()).state).read_volatile() }
    }

    /// Sets or clears `kvm_tdx->wait_for_sept_zap`, KVM's own entry gate:
    /// `tdx_vcpu_run()` refuses to enter the TD while it is set. KVM writes
    /// it under `mmu_lock`; so does every caller here (as `WRITE_ONCE()`).
    pub(crate) fn set_wait_for_sept_zap(self, on: bool) {
        // SAFETY: The TD is live (type invariant); a volatile store of a
        // `bool` is `WRITE_ONCE()`.
        unsafe { addr_of_mut!((*self.ptr.as_ptr()).wait_for_sept_zap).write_volatile(on) }
    }

    #[cfg(tsg_tests)]
    /// `kvm_tdx->wait_for_sept_zap`.
    pub(crate) fn wait_for_sept_zap(self) -> bool {
        // SAFETY: As for `set_wait_for_sept_zap`, as `READ_ONCE()`.
        unsafe { addr_of!((*self.ptr.as_ptr()).wait_for_sept_zap).read_volatile() }
    }

    /// Marks the VM bugged and dead (`kvm->vm_bugged`, `kvm->vm_dead`), as
    /// `kvm_vm_bugged()` does before it requests `KVM_REQ_VM_DEAD`; with
    /// `vm_bugged` set, KVM's later `KVM_BUG_ON()`s stay silent.
    pub(crate) fn mark_bugged(self) {
        let kvm = self.kvm();
        // SAFETY: The VM is live (type invariant); these are `WRITE_ONCE()`s
        // of two `bool`s, as KVM's own (plain) stores of them.
        unsafe {
            addr_of_mut!((*kvm).vm_bugged).write_volatile(true);
            addr_of_mut!((*kvm).vm_dead).write_volatile(true);
        }
    }

    /// `kvm->vm_bugged`.
    pub(crate) fn is_bugged(self) -> bool {
        // SAFETY: The VM is live (type invariant); `READ_ONCE()`.
        unsafe { addr_of!((*self.kvm()).vm_bugged).read_volatile() }
    }
}

/// A vCPU of a [`Td`].
///
/// # Invariants
///
/// `ptr` points to a `struct kvm_vcpu` alive for `'a` (KVM frees vCPUs only
/// when the VM is destroyed).
#[derive(Clone, Copy)]
pub(crate) struct Vcpu<'a> {
    ptr: NonNull<kvm_vcpu>,
    _life: PhantomData<&'a kvm_vcpu>,
}

impl<'a> Vcpu<'a> {
    /// # Safety
    ///
    /// `vcpu` is NULL or a vCPU alive for `'a`.
    pub(crate) unsafe fn from_raw(vcpu: *mut kvm_vcpu) -> Option<Self> {
        // INVARIANT: By the caller's contract.
        NonNull::new(vcpu).map(|ptr| Self {
            ptr,
            _life: PhantomData,
        })
    }

    pub(crate) fn as_ptr(self) -> *mut kvm_vcpu {
        self.ptr.as_ptr()
    }

    /// `vcpu->vcpu_idx`, its index in the VM's `vcpu_array`.
    pub(crate) fn idx(self) -> u32 {
        // SAFETY: The vCPU is live (type invariant); KVM sets the index
        // before the vCPU is visible and never changes it.
        let idx = unsafe { addr_of!((*self.ptr.as_ptr()).vcpu_idx).read() };
        u32::try_from(idx).unwrap_or(u32::MAX)
    }

    /// `vcpu->cpu`, the CPU it was last loaded on (-1 if none).
    pub(crate) fn cpu(self) -> i32 {
        // SAFETY: The vCPU is live (type invariant); `READ_ONCE()`.
        unsafe { addr_of!((*self.ptr.as_ptr()).cpu).read_volatile() }
    }
}
