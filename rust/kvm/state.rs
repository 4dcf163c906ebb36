// SPDX-License-Identifier: GPL-2.0

//! What the hook works with: the map call under the policy, the zero-step
//! observations, and stopping a VM.

use super::bindings::{
    kvm,
    kvm_vcpu,
    Td,
    Vcpu,
    TD_STATE_RUNNABLE, //
};
use super::executor::{
    GateCell,
    KvmExecutor,
    KvmVcpus,
    MapCall, //
};
use super::hooks;
use super::vm;
use super::AttachCounters;
use crate::platform::{
    latency::Latencies,
    percpu::PerCpu,
    sync::{
        local_clock_ns,
        KClock,
        KCounter, //
    },
};
use crate::policy::{
    gate::OUTSIDE_GUEST_MODE,
    CounterCell,
    Counters,
    EntryGate,
    Executor,
    Leaf,
    Outcome,
    Policy,
    SeptOp,
    Status,
    VcpuSet,
    VmBugReason,
    ZeroStep,
    ZeroStepVerdict, //
};
use kernel::{
    alloc::KVBox,
    prelude::*,
    str::BStr,
    sync::rcu, //
};

/// What the hook works with, shared with debugfs.
#[pin_data]
pub(crate) struct KvmState {
    pub(super) orig: usize,
    pub(super) policy: Policy,
    pub(super) kick_timeout_ns: u64,
    pub(super) clock: KClock,
    /// Counts made outside any one VM: the unmap leaves' busy statuses.
    pub(crate) counters: Counters<KCounter>,
    /// One copy per CPU: every map call adds to one of these.
    pub(crate) attach: PerCpu<AttachCounters<KCounter>>,
    /// Latency of calls no VM state was found for (`None`: histograms are
    /// off, for every VM).
    pub(crate) latency: Option<KVBox<Latencies>>,
    /// The test module's "option A" of the zero-step response
    /// ([`KvmState::zero_step_hold`]).
    #[cfg(tsg_tests)]
    pub(super) zero_step_hold: bool,
    #[pin]
    pub(crate) vms: vm::Vms,
}

impl KvmState {
    /// The attach layer's counters, summed over the CPUs.
    pub(crate) fn attach_totals(&self) -> AttachCounters<KCounter> {
        let sum = AttachCounters::new();
        self.attach.sum_into(&sum);
        sum
    }

    /// The map call, under the policy. (In the test module, with
    /// `zero_step_hold`, it then ends the zero-step hold of a vCPU whose
    /// fault this GFN was.)
    pub(super) fn map(&self, td: Td<'_>, gfn: u64, old: u64, new: u64, level: i32) -> i32 {
        let ret = self.map_under_policy(td, gfn, old, new, level);
        #[cfg(tsg_tests)]
        self.hold_end_gfn(td, gfn);
        ret
    }

    /// A SEAMCALL wrapper of `leaf` for the VM `kvm` took `ns` (the leaf
    /// probes): into the VM's histogram, or the unattributed one.
    pub(super) fn seamcall_time(&self, kvm: *mut kvm, leaf: Leaf, ns: u64) {
        let rcu = rcu::read_lock();
        let latency = match self.vms.get_key(kvm, &rcu) {
            Some(vm) => vm.events.latency(),
            None => self.latency.as_deref(),
        };
        if let Some(l) = latency {
            l.seamcall(leaf, ns);
        }
    }

    fn map_under_policy(&self, td: Td<'_>, gfn: u64, old: u64, new: u64, level: i32) -> i32 {
        // With histograms on, the call is timed from here to its return.
        let start_ns = self.latency.as_ref().map(|_| local_clock_ns());
        let mut call = MapCall::new(self.orig, td, gfn, old, new, level);
        // A VM the module stopped stays stopped: KVM gets an error at once,
        // without another SEAMCALL or kick (each would be a bounded wait
        // with preemption off, paid again on every later fault).
        if td.is_bugged() {
            self.attach.local().kvm_stopped_vm_calls.add(1);
            return EIO.to_errno();
        }
        let rcu = rcu::read_lock();
        let Some(vm) = self.vms.get(td, &rcu) else {
            // Its state could not be allocated (logged then), or KVM
            // created it while the module attached: that is looked into
            // in process context. Nothing is allocated here.
            self.attach.local().kvm_untracked_calls.add(1);
            self.vms.missing(td);
            let _ = call.call_kvm();
            Self::map_time(self.latency.as_deref(), start_ns);
            return call.ret;
        };
        self.attach.local().kvm_map_calls.add(1);
        let ret = self.map_vm(td, vm, &mut call, gfn, new, level);
        Self::map_time(vm.events.latency(), start_ns);
        ret
    }

    /// Records a map call begun at `start_ns` into `latency`, if both are
    /// kept.
    fn map_time(latency: Option<&Latencies>, start_ns: Option<u64>) {
        if let (Some(l), Some(start_ns)) = (latency, start_ns) {
            l.map(local_clock_ns().saturating_sub(start_ns));
        }
    }

    /// The map call of a VM with state, under the policy.
    fn map_vm(
        &self,
        td: Td<'_>,
        vm: &vm::VmState,
        call: &mut MapCall<'_>,
        gfn: u64,
        new: u64,
        level: i32,
    ) -> i32 {
        let leaf = if !hooks::is_last_spte(new, level) {
            Leaf::MemSeptAdd
        } else if td.state() == TD_STATE_RUNNABLE {
            Leaf::MemPageAug
        } else {
            Leaf::MemPageAdd
        };
        let op = SeptOp {
            leaf,
            gpa: gfn << 12,
            level: level as u8,
        };
        let outcome = self.with_executor(td, vm, |exec| exec.run(&op, call));
        match outcome {
            Outcome::Done { .. } => 0,
            Outcome::Error { .. } => call.ret,
            Outcome::Busy { .. } => EBUSY.to_errno(),
            Outcome::VmBug { reason, status, .. } => {
                self.stop_vm(td, vm, leaf, reason, status, call.injected);
                pr_warn!(
                    "kvm: VM {} ({:#x}) stopped: {} at gfn {:#x} ended in {:?}{}\n",
                    BStr::from_bytes(vm.name()),
                    td.kvm() as usize,
                    leaf.name(),
                    gfn,
                    reason,
                    if call.injected { " (injected)" } else { "" }
                );
                EIO.to_errno()
            }
        }
    }

    /// The VM's vCPUs, as the kicker sees them.
    fn vcpus<'a>(&'a self, td: Td<'a>, vm: &'a vm::VmState) -> KvmVcpus<'a> {
        KvmVcpus {
            td,
            ipis: &vm.ipis,
            clock: &self.clock,
            timeout_ns: self.kick_timeout_ns,
        }
    }

    /// Runs `f` with an executor for the VM: its gate (KVM's
    /// `wait_for_sept_zap`), vCPUs, counters and trace events.
    fn with_executor<R>(
        &self,
        td: Td<'_>,
        vm: &vm::VmState,
        f: impl FnOnce(&KvmExecutor<'_>) -> R,
    ) -> R {
        let gate = EntryGate::new(GateCell {
            td,
            lock: &vm.kickers,
        });
        let vcpus = self.vcpus(td, vm);
        let exec = Executor::new(self.policy, &gate, &vcpus, vm.counters.local(), &self.clock)
            .with_events(&vm.events);
        f(&exec)
    }

    /// A zero-step observation on `vcpu`, from KVM's tracepoints: `f` feeds
    /// the vCPU's detector, which counts and traces the event.
    ///
    /// Nothing is kicked here. A kick before KVM handles the fault would
    /// protect nothing: the gate would have to come down before the fault's
    /// map, and the kicked vCPUs would enter again at once (holding it up
    /// until the map instead cannot be made leak-free: a vCPU refused entry
    /// by the gate reaches no exit that could take it down). The TDX
    /// module's zero-step mitigation shows up where it matters, as a busy
    /// AUG or SEPT.ADD in the fault's map, and the map path answers that
    /// with its one kick and retry, under every policy's own rules.
    ///
    /// Returns the detector's verdict, if the VM has state.
    pub(super) fn zero_step(
        &self,
        vcpu: *mut kvm_vcpu,
        f: impl FnOnce(&mut ZeroStep, &Counters<KCounter>) -> ZeroStepVerdict,
    ) -> Option<ZeroStepVerdict> {
        // SAFETY: The tracepoints pass a live TD vCPU (`helpers.c` checks
        // `is_td_vcpu()`).
        unsafe { self.with_vcpu_vm(vcpu, |_, idx, vm| vm.zero_step_observe(idx, f)) }.flatten()
    }

    /// Runs `f` on the TD of `vcpu`, the vCPU's index in it and the VM's
    /// state, under `rcu_read_lock()`, if the VM has state.
    ///
    /// # Safety
    ///
    /// `vcpu` is a live vCPU of a TD.
    unsafe fn with_vcpu_vm<R>(
        &self,
        vcpu: *mut kvm_vcpu,
        f: impl FnOnce(Td<'_>, u32, &vm::VmState) -> R,
    ) -> Option<R> {
        // SAFETY: The caller's contract.
        let (td, idx) = unsafe { td_and_index(vcpu) }?;
        let rcu = rcu::read_lock();
        Some(f(td, idx, self.vms.get(td, &rcu)?))
    }

    /// Stops the VM as `kvm_vm_bugged()` does, from what a module may use:
    /// `vm_bugged` and `vm_dead`, `KVM_REQ_VM_DEAD` on every vCPU, and an
    /// IPI to each vCPU in guest mode so that it sees the request. Waits for
    /// nothing: the map that stops the VM already paid its one deadline.
    /// Traces it (`tsg_vm_stop`) with `leaf`, the `status` the policy saw
    /// (made up by fault injection if `injected`) and `reason`.
    fn stop_vm(
        &self,
        td: Td<'_>,
        vm: &vm::VmState,
        leaf: Leaf,
        reason: VmBugReason,
        status: Status,
        injected: bool,
    ) {
        vm.events.vm_stop(leaf, status, Some(reason), injected);
        td.mark_bugged();
        for i in 0..td.online_vcpus() {
            if let Some(v) = td.vcpu(i) {
                v.request_vm_dead();
            }
        }
        let vcpus = self.vcpus(td, vm);
        for i in 0..vcpus.nr_vcpus() {
            if vcpus.exiting_guest_mode(i) != OUTSIDE_GUEST_MODE {
                vcpus.send_ipi(i);
            }
        }
        self.attach.local().kvm_vm_stops.add(1);
    }
}

/// The TD of a vCPU and the vCPU's index in it.
///
/// # Safety
///
/// `vcpu` is a live vCPU of a TD.
unsafe fn td_and_index<'a>(vcpu: *mut kvm_vcpu) -> Option<(Td<'a>, u32)> {
    // SAFETY: The caller's contract.
    let td = unsafe { hooks::td_of(vcpu) }?;
    // SAFETY: As above: a live vCPU of that TD.
    let idx = unsafe { Vcpu::from_raw(vcpu) }?.idx();
    Some((td, idx))
}

/// The test module's "option A" of the zero-step response, measured by the
/// KVM benchmark suite against the shipped one (which only observes, see
/// [`KvmState::zero_step`]): when the detector answers
/// [`ZeroStepVerdict::KickAndWait`] at `kvm_page_fault`, raise the gate,
/// kick the vCPUs in guest mode and wait for them, and keep the gate up
/// until the map hook has run for that fault's GFN, or the vCPU's next exit
/// or fault, whichever comes first.
///
/// It runs in the `kvm_page_fault` probe: the vCPU's own task, interrupts
/// on, inside the tracepoint's SRCU read section (7.2 runs tracepoint probes
/// under SRCU, preemptible). The kick's wait spins against the kick deadline
/// (at most `MAX_KICK_TIMEOUT_US`); it runs with preemption off, as the map
/// path's kick does under `mmu_lock`, so that the spinning task keeps its
/// CPU. A kick that times out lowers the gate at once and stops nothing: no
/// SEAMCALL failed.
///
/// Why it does not ship: a vCPU that holds the gate and does not reach the
/// map hook for its GFN (a spurious fault another vCPU resolved, an exit to
/// user space) goes to enter again, and `tdx_vcpu_run()` refuses it before
/// `kvm_entry` and `kvm_exit` fire: no probe sees it again, and the gate
/// stays up (`Documentation/attach.rst`, "Zero-step").
#[cfg(tsg_tests)]
pub(super) mod hold {
    use kernel::sync::atomic::Atomic;

    /// Holds taken, and kicks for one that timed out (no hold taken).
    pub(crate) static TAKEN: Atomic<u64> = Atomic::new(0);
    pub(crate) static TIMED_OUT: Atomic<u64> = Atomic::new(0);
    /// Holds ended by the map hook for the fault's GFN, and by the vCPU's
    /// next exit or fault.
    pub(crate) static ENDED_BY_MAP: Atomic<u64> = Atomic::new(0);
    pub(crate) static ENDED_BY_EXIT: Atomic<u64> = Atomic::new(0);
}

/// Preemption disabled for the lifetime of the guard.
///
/// # Invariants
///
/// `preempt_disable()` was called on this task when the guard was made and
/// is undone exactly once, in `drop`; the guard is neither `Send` nor `Sync`.
#[cfg(tsg_tests)]
struct PreemptOff(core::marker::PhantomData<*mut ()>);

#[cfg(tsg_tests)]
impl PreemptOff {
    fn new() -> Self {
        // SAFETY: `preempt_disable()` has no preconditions.
        unsafe { super::bindings::ffi::tsg_fake_preempt_disable() };
        // INVARIANT: Just disabled, undone in `drop`.
        Self(core::marker::PhantomData)
    }
}

#[cfg(tsg_tests)]
impl Drop for PreemptOff {
    fn drop(&mut self) {
        // SAFETY: Pairs with the `preempt_disable()` of `new` (type
        // invariant).
        unsafe { super::bindings::ffi::tsg_fake_preempt_enable() };
    }
}

#[cfg(tsg_tests)]
impl KvmState {
    /// Option A at `kvm_page_fault`: `verdict` is the detector's for a
    /// private fault of `vcpu` at `gpa` (see [`hold`]).
    pub(super) fn zero_step_hold(
        &self,
        vcpu: *mut kvm_vcpu,
        gpa: u64,
        verdict: Option<ZeroStepVerdict>,
    ) {
        if !self.zero_step_hold || verdict != Some(ZeroStepVerdict::KickAndWait) {
            return;
        }
        // SAFETY: The tracepoint passes a live TD vCPU.
        unsafe { self.with_vcpu_vm(vcpu, |td, idx, vm| self.hold_start(td, idx, vm, gpa)) };
    }

    /// [`Self::zero_step_hold`] once the vCPU's VM is found: vCPU `idx` of
    /// `td` takes its hold for the fault at `gpa`.
    fn hold_start(&self, td: Td<'_>, idx: u32, vm: &vm::VmState, gpa: u64) {
        use kernel::sync::atomic::{
            Relaxed,
            Release, //
        };
        let Some(cell) = vm.holds.get(idx as usize) else {
            return;
        };
        // One hold per vCPU; only its own task sets it, so this load does
        // not race with another setter.
        if cell.load(Relaxed) != 0 {
            return;
        }
        let held = {
            let _preempt = PreemptOff::new();
            self.with_executor(td, vm, |exec| match exec.kick_and_wait() {
                Ok(guard) => {
                    // The gate stays up past this call: the map hook or the
                    // vCPU's next exit lowers it (`hold_end_*`).
                    core::mem::forget(guard);
                    true
                }
                Err(_) => false,
            })
        };
        if held {
            // Published after the raise: whoever takes it lowers a raised
            // gate.
            cell.store((gpa >> 12) + 1, Release);
            hold::TAKEN.add(1, Relaxed);
        } else {
            hold::TIMED_OUT.add(1, Relaxed);
        }
    }

    /// Ends `vcpu`'s hold, if it has one: its next exit or fault.
    pub(super) fn hold_end_vcpu(&self, vcpu: *mut kvm_vcpu) {
        if !self.zero_step_hold {
            return;
        }
        // SAFETY: The probes pass a live TD vCPU.
        unsafe {
            self.with_vcpu_vm(vcpu, |td, idx, vm| {
                let cell = vm.holds.get(idx as usize);
                if cell.is_some_and(|c| c.xchg(0, kernel::sync::atomic::Full) != 0) {
                    Self::lower_gate(td, vm);
                    hold::ENDED_BY_EXIT.add(1, kernel::sync::atomic::Relaxed);
                }
            })
        };
    }

    /// Ends the hold of every vCPU whose fault was at `gfn`: the map hook
    /// ran for it.
    fn hold_end_gfn(&self, td: Td<'_>, gfn: u64) {
        if !self.zero_step_hold {
            return;
        }
        let rcu = rcu::read_lock();
        let Some(vm) = self.vms.get(td, &rcu) else {
            return;
        };
        for cell in vm.holds.iter() {
            if cell.cmpxchg(gfn + 1, 0, kernel::sync::atomic::Full).is_ok() {
                Self::lower_gate(td, vm);
                hold::ENDED_BY_MAP.add(1, kernel::sync::atomic::Relaxed);
            }
        }
    }

    fn lower_gate(td: Td<'_>, vm: &vm::VmState) {
        use crate::policy::Atomic64;
        GateCell {
            td,
            lock: &vm.kickers,
        }
        .fetch_sub(1);
    }
}
