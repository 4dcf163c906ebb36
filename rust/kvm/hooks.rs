// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers over the backend's C side: finding KVM's functions by name
//! and checking the kernel (`helpers.c`), redirecting one with ftrace
//! (`redirect.c`), the probes (`probes.c`), and KVM's static inlines.

use super::bindings::ffi::*;
use super::bindings::{
    kvm_vcpu,
    Td,
    Vcpu, //
};
use crate::policy::Status;
use core::ffi::CStr;
use core::ptr::NonNull;
use kernel::{
    error::to_result,
    prelude::*, //
};

/// The C side's redirect (`redirect.c`), opaque here.
type RedirectRaw = tsg_redirect;

/// The start of the kernel function `name` (its ENDBR included), if the
/// running kernel has it.
pub(crate) fn lookup(name: &CStr) -> Option<usize> {
    // SAFETY: `name` is NUL-terminated; the lookup registers and removes a
    // kprobe and calls nothing it finds.
    let addr = unsafe { tsg_kvm_lookup(name.as_char_ptr()) };
    (addr != 0).then_some(addr)
}

/// Whether the CPU enforces indirect-branch tracking.
pub(crate) fn ibt_enabled() -> bool {
    // SAFETY: No preconditions.
    unsafe { tsg_kvm_ibt_enabled() }
}

/// Whether the code at `addr`, a function start from [`lookup`], begins
/// with ENDBR, i.e. may be called through a pointer under IBT.
pub(crate) fn has_endbr(addr: usize) -> bool {
    // SAFETY: `addr` is the start of a kernel function (from `lookup`): four
    // readable bytes of kernel text.
    unsafe { tsg_kvm_has_endbr(addr) }
}

/// Whether FineIBT guards indirect calls to `addr` (a function start from
/// [`lookup`]): its entry ENDBR is poisoned and the CFI preamble before it
/// takes the calls.
pub(crate) fn fineibt_guarded(addr: usize) -> bool {
    // SAFETY: `addr` is the start of a kernel function; the C side reads
    // the text around it with `get_kernel_nofault()`.
    unsafe { tsg_kvm_fineibt_guarded(addr) }
}

/// Whether this kernel's ftrace would jump into its list function instead of
/// calling it (an unaligned kernel: see `helpers.c`), which crashes the first
/// function two ftrace users share.
pub(crate) fn ftrace_jumps_to_list_func() -> bool {
    // SAFETY: Process context (it registers and removes a kprobe).
    unsafe { tsg_kvm_ftrace_jumps_to_list_func() }
}

/// kvm_intel's `tdx` parameter (`enable_tdx`): `Some(true)` if KVM's TDX
/// support is on, `None` if there is no such parameter.
pub(crate) fn tdx_enabled_in_kvm() -> Option<bool> {
    // SAFETY: Process context (it opens a sysfs file).
    match unsafe { tsg_kvm_tdx_param() } {
        1 => Some(true),
        0 => Some(false),
        _ => None,
    }
}

/// How many VMs KVM has, or `None` if its VM list cannot be found.
#[cfg(tsg_tests)]
pub(crate) fn nr_vms() -> Option<u32> {
    // SAFETY: Process context (it takes KVM's `kvm_lock` mutex).
    u32::try_from(unsafe { tsg_kvm_nr_vms() }).ok()
}

/// What KVM's live `kvm_x86_ops.set_external_spte` points to, or `None`
/// while it is unset (KVM's TDX is not set up) or not found.
pub(crate) fn external_spte_op() -> Option<usize> {
    // SAFETY: Process context (it registers and removes a kprobe); the C
    // side reads the op with `get_kernel_nofault()`.
    let op = unsafe { tsg_kvm_external_spte_op() };
    (op != 0).then_some(op)
}

/// Whether the CPU is a TDX host platform (`X86_FEATURE_TDX_HOST_PLATFORM`).
pub(crate) fn tdx_host_platform() -> bool {
    // SAFETY: No preconditions.
    unsafe { tsg_kvm_tdx_host_platform() }
}

/// Waits for an RCU grace period: every preemption-disabled section that
/// began before has ended.
pub(crate) fn synchronize_rcu() {
    // SAFETY: Called from process context (module load or unload).
    unsafe { tsg_kvm_synchronize_rcu() }
}

/// One kernel function redirected, with ftrace, to a replacement of the same
/// prototype; calls from this module still reach the original. Disabled and
/// freed on drop.
///
/// # Invariants
///
/// `raw` came from `tsg_redirect_new()` and is freed only in `drop`.
pub(crate) struct Redirect {
    raw: NonNull<RedirectRaw>,
}

// SAFETY: The ftrace registration may be changed and freed from any task.
unsafe impl Send for Redirect {}
// SAFETY: `&Redirect` allows nothing.
unsafe impl Sync for Redirect {}

impl Redirect {
    /// Redirects `target` to `replacement`. `EBUSY`: another IPMODIFY user
    /// (a livepatch, a BPF trampoline) owns `target`.
    ///
    /// # Safety
    ///
    /// `target` is the start of a kernel function and `replacement` the
    /// address of a function with exactly its prototype, alive (this
    /// module's text) as long as the returned value.
    pub(crate) unsafe fn new(name: &CStr, target: usize, replacement: usize) -> Result<Self> {
        // SAFETY: Plain allocation; the addresses are only stored.
        let raw = unsafe { tsg_redirect_new(name.as_char_ptr(), target, replacement) };
        // INVARIANT: `raw` is fresh from `tsg_redirect_new()`.
        let this = Self {
            raw: NonNull::new(raw).ok_or(ENOMEM)?,
        };
        // SAFETY: `raw` is live; the caller vouches for the addresses.
        to_result(unsafe { tsg_redirect_enable(this.raw.as_ptr()) })?;
        Ok(this)
    }

    /// Removes the redirection, and `create`, when the module that owns the
    /// target goes away (kvm_intel, where it is a module) until
    /// [`OwnerWatch`] drops. Only one redirection is watched at a time.
    ///
    /// # Safety
    ///
    /// The returned [`OwnerWatch`] must be dropped before `self` and
    /// `create`.
    pub(crate) unsafe fn watch_owner(&self, create: &Redirect) -> Result<OwnerWatch> {
        // SAFETY: Both are live until they drop, and by the caller's
        // contract the notifier is unregistered before that.
        to_result(unsafe { tsg_kvm_watch_owner(self.raw.as_ptr(), create.raw.as_ptr()) })?;
        Ok(OwnerWatch(()))
    }

    /// Stops redirecting. Calls already inside the replacement carry on.
    pub(crate) fn disable(&self) {
        // SAFETY: `raw` is live (type invariant); disabling twice is allowed.
        unsafe { tsg_redirect_disable(self.raw.as_ptr()) }
    }
}

impl Drop for Redirect {
    fn drop(&mut self) {
        // SAFETY: `raw` came from `tsg_redirect_new()` (type invariant) and is
        // freed once, here; freeing disables the redirection first.
        unsafe { tsg_redirect_free(self.raw.as_ptr()) }
    }
}

/// The replacement for `vt_vm_init()`, at `orig`: `redirect.c`'s function
/// of that prototype, which calls the original and then, for a TD,
/// `tsg_kvm_vm_created()`.
pub(crate) fn vm_init_replacement(orig: usize) -> usize {
    // SAFETY: Only stores `orig`, which the replacement calls once its
    // redirection is enabled (the caller's `Redirect::new` contract).
    unsafe { tsg_kvm_vm_init_replacement(orig) }
}

/// Waits until no task is inside `vt_vm_init()`'s replacement; call after
/// its redirection is disabled.
pub(crate) fn quiesce_vm_init() {
    // SAFETY: Process context (it sleeps).
    unsafe { tsg_kvm_vm_init_quiesce() }
}

/// A module notifier watching a [`Redirect`]'s target; removed on drop.
pub(crate) struct OwnerWatch(());

impl Drop for OwnerWatch {
    fn drop(&mut self) {
        // SAFETY: Process context; removes what `watch_owner` registered.
        unsafe { tsg_kvm_unwatch_owner() }
    }
}

/// The replacement for `tdx_sept_set_private_spte()`: `helpers.c`'s
/// function of that prototype, which calls `tsg_kvm_set_private_spte()`.
pub(crate) fn set_private_spte_replacement() -> usize {
    // SAFETY: No preconditions.
    unsafe { tsg_kvm_set_private_spte_replacement() }
}

/// Calls KVM's `tdx_sept_set_private_spte()` at `orig`; returns what it
/// returned and the raw status of the map SEAMCALL it made (0 if none was
/// seen: an unmap, or no probe on that wrapper).
///
/// # Safety
///
/// `orig` is that function (from [`lookup`], checked for ENDBR under IBT),
/// and the arguments are what KVM passed to it on this very call: `kvm` a
/// live TD with `mmu_lock` held as KVM holds it there, the mirror SPTE still
/// frozen.
pub(crate) unsafe fn call_set_private_spte(
    orig: usize,
    td: Td<'_>,
    gfn: u64,
    old: u64,
    new: u64,
    level: i32,
) -> (i32, Status) {
    let mut raw = 0;
    // SAFETY: The caller's contract is the original's; `raw` is valid for
    // writes.
    let ret =
        unsafe { tsg_kvm_call_set_private_spte(orig, td.kvm(), gfn, old, new, level, &mut raw) };
    (ret, Status::from_raw(raw))
}

/// Per-leaf outcomes and durations: kretprobes on the S-EPT SEAMCALL
/// wrappers. Removed on drop (waiting for handlers in progress).
pub(crate) struct LeafProbes {
    /// How many of the six wrappers could be probed.
    pub(crate) placed: u32,
}

impl LeafProbes {
    /// Places the probes, which also time the wrappers if `timed`; only
    /// one set exists (the backend is attached at most once, see `ACTIVE`
    /// in `attach.rs`).
    pub(crate) fn register(place: bool, timed: bool) -> Self {
        if !place {
            return Self { placed: 0 };
        }
        // SAFETY: Called once per attach, from process context; the C side
        // keeps the probes in static storage.
        let placed = unsafe { tsg_kvm_leaf_probes_register(timed) };
        Self { placed }
    }
}

impl Drop for LeafProbes {
    fn drop(&mut self) {
        // SAFETY: Process context; unregistering what `register` placed.
        unsafe { tsg_kvm_leaf_probes_unregister() }
    }
}

/// A kprobe on `kvm_arch_destroy_vm()`: tells the backend when KVM destroys
/// a VM. Removed on drop (waiting for handlers in progress).
pub(crate) struct DestroyProbe {
    /// Whether it could be placed.
    pub(crate) placed: bool,
}

impl DestroyProbe {
    /// Places the probe (once per attach, see `LeafProbes::register`).
    pub(crate) fn register() -> Self {
        // SAFETY: Process context; the C side keeps the probe in static
        // storage.
        let placed = unsafe { tsg_kvm_destroy_probe_register() };
        Self { placed }
    }
}

impl DestroyProbe {
    /// VM destructions the probe missed (it fired inside another kprobe's
    /// handler): per-VM state that may have outlived its VM.
    pub(crate) fn missed() -> u64 {
        // SAFETY: Reads the probe's counter.
        unsafe { tsg_kvm_destroy_probe_missed() as u64 }
    }
}

impl Drop for DestroyProbe {
    fn drop(&mut self) {
        // SAFETY: Process context; removes what `register` placed.
        unsafe { tsg_kvm_destroy_probe_unregister() }
    }
}

/// Probes on KVM's `kvm_page_fault` and `kvm_exit` tracepoints, feeding
/// the zero-step detector. Removed on drop (waiting for probes running).
pub(crate) struct ZeroStepProbes {
    /// Whether they could be placed.
    pub(crate) placed: bool,
}

impl ZeroStepProbes {
    /// Places the probes (once per attach).
    pub(crate) fn register() -> Self {
        // SAFETY: Process context; the probes are static C functions.
        let placed = unsafe { tsg_kvm_tracepoints_register() };
        Self { placed }
    }
}

impl Drop for ZeroStepProbes {
    fn drop(&mut self) {
        // SAFETY: Process context; waits for probes in progress.
        unsafe { tsg_kvm_tracepoints_unregister() }
    }
}

/// The TD a vCPU belongs to.
///
/// # Safety
///
/// `vcpu` is a live vCPU of a TD (a `struct kvm_tdx`).
pub(crate) unsafe fn td_of<'a>(vcpu: *mut kvm_vcpu) -> Option<Td<'a>> {
    // SAFETY: `vcpu` is live (the caller's contract), so is its VM, a TD.
    unsafe { Td::from_kvm(tsg_kvm_vcpu_kvm(vcpu)) }
}

/// KVM's `is_shadow_present_pte()`.
pub(crate) fn is_shadow_present(spte: u64) -> bool {
    // SAFETY: A pure function of its argument.
    unsafe { tsg_kvm_is_shadow_present(spte) }
}

/// KVM's `is_last_spte()`.
pub(crate) fn is_last_spte(spte: u64, level: i32) -> bool {
    // SAFETY: A pure function of its arguments.
    unsafe { tsg_kvm_is_last_spte(spte, level) }
}

impl<'a> Td<'a> {
    /// `atomic_read(&kvm->online_vcpus)`.
    pub(crate) fn online_vcpus(self) -> u32 {
        // SAFETY: The VM is live (`Td`'s invariant).
        unsafe { tsg_kvm_online_vcpus(self.kvm()) }
    }

    /// `kvm->max_vcpus`: at most the present CPUs for a TD
    /// (`tdx_vm_init()`).
    pub(crate) fn max_vcpus(self) -> u32 {
        // SAFETY: The VM is live (`Td`'s invariant).
        unsafe { tsg_kvm_max_vcpus(self.kvm()) }
    }

    /// `kvm_get_vcpu(kvm, i)`.
    pub(crate) fn vcpu(self, i: u32) -> Option<Vcpu<'a>> {
        // SAFETY: The VM is live; `kvm_get_vcpu()` bounds-checks `i` against
        // `online_vcpus` and returns NULL beyond it. vCPUs live as long as
        // the VM.
        unsafe { Vcpu::from_raw(tsg_kvm_get_vcpu(self.kvm(), i)) }
    }
}

impl Vcpu<'_> {
    /// `kvm_vcpu_exiting_guest_mode()`: a fully ordered
    /// `cmpxchg(IN_GUEST_MODE, EXITING_GUEST_MODE)`; returns the old mode.
    pub(crate) fn exiting_guest_mode(self) -> u32 {
        // SAFETY: The vCPU is live (`Vcpu`'s invariant).
        unsafe { tsg_kvm_vcpu_exiting_guest_mode(self.as_ptr()) as u32 }
    }

    /// `kvm_make_request(KVM_REQ_VM_DEAD, vcpu)`.
    pub(crate) fn request_vm_dead(self) {
        // SAFETY: The vCPU is live; setting a request bit is atomic.
        unsafe { tsg_kvm_request_vm_dead(self.as_ptr()) }
    }
}
