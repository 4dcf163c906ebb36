// SPDX-License-Identifier: GPL-2.0

//! What the hook works with: the map call under the policy, the zero-step
//! observations, and stopping a VM.

use super::bindings::{
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
use crate::platform::sync::{
    KClock,
    KCounter, //
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
    Seamcall,
    SeptOp,
    Status,
    VcpuSet,
    VmBugReason,
    ZeroStep,
    ZeroStepVerdict, //
};
use kernel::{
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
    pub(crate) attach: AttachCounters<KCounter>,
    #[pin]
    pub(crate) vms: vm::Vms,
}

impl KvmState {
    /// The map call, under the policy.
    pub(super) fn map(&self, td: Td<'_>, gfn: u64, old: u64, new: u64, level: i32) -> i32 {
        let mut call = MapCall {
            orig: self.orig,
            td,
            gfn,
            old,
            new,
            level,
            ret: 0,
        };
        // A VM the module stopped stays stopped: KVM gets an error at once,
        // without another SEAMCALL or kick (each would be a bounded wait
        // with preemption off, paid again on every later fault).
        if td.is_bugged() {
            self.attach.kvm_stopped_vm_calls.add(1);
            return EIO.to_errno();
        }
        let rcu = rcu::read_lock();
        let Some(vm) = self.vms.get(td, &rcu) else {
            // Its state could not be allocated (logged then), or KVM
            // created it while the module attached: that is looked into
            // in process context. Nothing is allocated here.
            self.attach.kvm_untracked_calls.add(1);
            self.vms.missing(td);
            let _ = call.seamcall(&SeptOp::new_4k(Leaf::MemPageAug, gfn << 12));
            return call.ret;
        };
        self.attach.kvm_map_calls.add(1);
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
        let outcome = self.with_executor(td, vm, |exec| exec.run(&op, &mut call));
        match outcome {
            Outcome::Done { .. } => 0,
            Outcome::Error { .. } => call.ret,
            Outcome::Busy { .. } => EBUSY.to_errno(),
            Outcome::VmBug { reason, status, .. } => {
                self.stop_vm(td, vm, leaf, reason, status);
                pr_warn!(
                    "kvm: VM {} ({:#x}) stopped: {} at gfn {:#x} ended in {:?}\n",
                    BStr::from_bytes(vm.name()),
                    td.kvm() as usize,
                    leaf.name(),
                    gfn,
                    reason
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
        let exec = Executor::new(self.policy, &gate, &vcpus, &vm.counters, &self.clock)
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
    pub(super) fn zero_step(
        &self,
        vcpu: *mut kvm_vcpu,
        f: impl FnOnce(&mut ZeroStep, &Counters<KCounter>) -> ZeroStepVerdict,
    ) {
        // SAFETY: The tracepoints pass a live TD vCPU (`helpers.c` checks
        // `is_td_vcpu()`).
        let Some(td) = (unsafe { hooks::td_of(vcpu) }) else {
            return;
        };
        // SAFETY: As above: a live vCPU of that TD.
        let Some(idx) = (unsafe { Vcpu::from_raw(vcpu) }).map(|v| v.idx()) else {
            return;
        };
        let rcu = rcu::read_lock();
        if let Some(vm) = self.vms.get(td, &rcu) {
            vm.zero_step_observe(idx, f);
        }
    }

    /// Stops the VM as `kvm_vm_bugged()` does, from what a module may use:
    /// `vm_bugged` and `vm_dead`, `KVM_REQ_VM_DEAD` on every vCPU, and an
    /// IPI to each vCPU in guest mode so that it sees the request. Waits for
    /// nothing: the map that stops the VM already paid its one deadline.
    /// Traces it (`tsg_vm_stop`) with `leaf`, the `status` the policy saw
    /// and `reason`.
    fn stop_vm(
        &self,
        td: Td<'_>,
        vm: &vm::VmState,
        leaf: Leaf,
        reason: VmBugReason,
        status: Status,
    ) {
        vm.events.vm_stop(leaf, status, Some(reason));
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
        self.attach.kvm_vm_stops.add(1);
    }
}
