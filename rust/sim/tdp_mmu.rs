// SPDX-License-Identifier: GPL-2.0

//! The host side of the simulation, as KVM's TDP MMU does it for a TD: the
//! fault (map) path under the read side of `mmu_lock`, the zap (unmap) path
//! under the write side. Every S-EPT SEAMCALL goes through the policy
//! executor with the mirror SPTE frozen across it.

use super::tdx_module::TdxModule;
use super::vm::{
    present_spte,
    Vm,
    VmExecutor,
    NONPRESENT_SPTE, //
};
use crate::platform::{
    latency::Latencies,
    sync::{
        local_clock_ns,
        KAtomic64, //
    },
};
use crate::policy::{
    Atomic64,
    Clock,
    CounterCell,
    FrozenSpte,
    Leaf,
    Outcome,
    Seamcall,
    SeptOp,
    Status,
    VmBugReason, //
};

/// Issues the SEAMCALLs of one operation to the simulated TDX module,
/// which may inject a busy status into a map try ([`TdxModule::seamcall_try`]),
/// and times those it issues (`seamcall_<leaf>_ns`).
struct Issuer<'a> {
    module: &'a TdxModule,
    latency: Option<&'a Latencies>,
    /// Tries issued so far.
    tries: u32,
    /// Whether the last status was injected.
    injected: bool,
}

impl<'a> Issuer<'a> {
    fn new(vm: &'a Vm) -> Self {
        Self {
            module: &vm.module,
            latency: vm.events.latency(),
            tries: 0,
            injected: false,
        }
    }
}

impl Seamcall for Issuer<'_> {
    fn seamcall(&mut self, op: &SeptOp) -> Status {
        self.tries += 1;
        let start_ns = self.latency.map(|_| local_clock_ns());
        let issued = self.module.seamcall_try(op, self.tries);
        if let (Some(l), Some(start_ns), false) = (self.latency, start_ns, issued.injected) {
            l.seamcall(op.leaf, local_clock_ns().saturating_sub(start_ns));
        }
        self.injected = issued.injected;
        issued.status
    }

    fn injected(&self) -> bool {
        self.injected
    }
}

/// A map-path S-EPT operation whose busy status went back to the fault
/// handler (`Policy::Upstream72`): the handler runs the fault again and the
/// operation goes on, so that it is measured whole.
struct OpenOp {
    leaf: Leaf,
    gpa: u64,
    tries: u32,
    start_ns: u64,
}

/// The operation a faulting vCPU has open, if any, across the re-runs of
/// one fault. [`OpTally::close`] ends it.
#[derive(Default)]
pub(crate) struct OpTally {
    open: Option<OpenOp>,
}

impl OpTally {
    /// Ends the open operation, if any (resolved by another task, or the
    /// VM stopped): it counts with the SEAMCALLs it issued.
    pub(crate) fn close(&mut self, vm: &Vm) {
        if let Some(op) = self.open.take() {
            vm.note_op(op.tries, vm.clock.now_ns().saturating_sub(op.start_ns));
        }
    }

    /// The open operation on `op`'s leaf and GPA, taken out; any other one
    /// is closed.
    fn take(&mut self, vm: &Vm, op: &SeptOp) -> Option<OpenOp> {
        match &self.open {
            Some(o) if o.leaf == op.leaf && o.gpa == op.gpa => self.open.take(),
            Some(_) => {
                self.close(vm);
                None
            }
            None => None,
        }
    }
}

/// How a fault ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    Mapped,
    /// Not resolved now (another task holds the SPTE, or busy handed back):
    /// the guest faults again, as with KVM's `RET_PF_RETRY`.
    Retry,
    Stopped,
}

/// How a zap ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Zap {
    Zapped,
    NotMapped,
    Stopped,
}

impl Vm {
    /// The host's side of a guest's private-to-shared conversion of `gpa`.
    pub(super) fn release(&self, gpa: u64) {
        if self.zap(gpa) == Zap::Zapped {
            self.sim_counters.sim_zaps.add(1);
        }
    }

    #[cfg(tsg_tests)]
    /// Handles a private EPT violation on `gpa`: TDH.MEM.SEPT.ADD if the
    /// S-EPT page is missing, then TDH.MEM.PAGE.AUG.
    ///
    /// `kick_first` is the zero-step response: the vCPUs are kicked and held
    /// out (gate up) while the fault is resolved, instead of entering again.
    pub(super) fn handle_fault(&self, gpa: u64, kick_first: bool) -> Fault {
        let mut tally = OpTally::default();
        let fault = self.run_fault(gpa, kick_first, &mut tally);
        tally.close(self);
        fault
    }

    /// One run of the fault handler (KVM's `kvm_tdp_mmu_page_fault()`),
    /// carrying a map operation left open by an earlier run in `tally`.
    pub(super) fn run_fault(&self, gpa: u64, kick_first: bool, tally: &mut OpTally) -> Fault {
        let (Some(table), Some(page)) = (self.mirror_table(gpa), self.mirror_page(gpa)) else {
            return Fault::Retry;
        };
        let exec = self.executor();
        let _mmu = self.mmu_lock.read();
        let _gate = if kick_first {
            match exec.kick_and_wait() {
                Ok(guard) => Some(guard),
                Err(_) => {
                    self.stop(
                        Leaf::VpEnter,
                        Some(VmBugReason::KickTimeout),
                        Status::SUCCESS,
                        false,
                    );
                    return Fault::Stopped;
                }
            }
        } else {
            None
        };
        let table_gpa = self.cfg.geometry.table_gpa(self.cfg.geometry.table_of(gpa));
        let table_op = SeptOp {
            leaf: Leaf::MemSeptAdd,
            gpa: table_gpa,
            level: 2,
        };
        match table.load_acquire() {
            NONPRESENT_SPTE => {
                match self.map_one(&exec, table, present_spte(table_gpa), &table_op, tally) {
                    Fault::Mapped => {}
                    other => return other,
                }
            }
            v if v == present_spte(table_gpa) => {}
            // Frozen by another fault on the same S-EPT page.
            _ => return Fault::Retry,
        }
        match page.load_acquire() {
            NONPRESENT_SPTE => {
                let op = SeptOp::new_4k(Leaf::MemPageAug, gpa);
                self.map_one(&exec, page, present_spte(gpa), &op, tally)
            }
            v if v == present_spte(gpa) => Fault::Mapped,
            _ => Fault::Retry,
        }
    }

    fn map_one(
        &self,
        exec: &VmExecutor<'_>,
        spte: &KAtomic64,
        new: u64,
        op: &SeptOp,
        tally: &mut OpTally,
    ) -> Fault {
        let start_ns = self.clock.now_ns();
        let map_start_ns = self.events.latency().map(|_| local_clock_ns());
        let mut issuer = Issuer::new(self);
        let outcome = exec.run_on_spte(spte, NONPRESENT_SPTE, new, op, &mut issuer);
        if let (Some(l), Some(map_start_ns)) = (self.events.latency(), map_start_ns) {
            l.map(local_clock_ns().saturating_sub(map_start_ns));
        }
        if let Ok(ended) = outcome {
            let earlier = tally.take(self, op);
            let (tries, start_ns) = match earlier {
                Some(o) => (o.tries + ended.tries(), o.start_ns),
                None => (ended.tries(), start_ns),
            };
            match ended {
                // Handed back: the operation goes on when the fault runs again.
                Outcome::Busy { .. } => {
                    tally.open = Some(OpenOp {
                        leaf: op.leaf,
                        gpa: op.gpa,
                        tries,
                        start_ns,
                    })
                }
                _ => self.note_op(tries, self.clock.now_ns().saturating_sub(start_ns)),
            }
        }
        match outcome {
            // Another host task froze or changed the SPTE first.
            Err(_) => Fault::Retry,
            Ok(Outcome::Done { .. }) => Fault::Mapped,
            Ok(Outcome::Busy { .. }) => Fault::Retry,
            Ok(Outcome::Error { status, .. }) => {
                self.stop(op.leaf, None, status, issuer.injected());
                Fault::Stopped
            }
            Ok(Outcome::VmBug { reason, status, .. }) => {
                self.stop(op.leaf, Some(reason), status, issuer.injected());
                Fault::Stopped
            }
        }
    }

    /// Zaps the 4K page at `gpa` if it is mapped: TDH.MEM.RANGE.BLOCK,
    /// TDH.MEM.TRACK, a kick of every vCPU (as KVM does after TRACK, so that
    /// no vCPU still runs in the old TLB epoch), TDH.MEM.PAGE.REMOVE. The
    /// SPTE stays frozen throughout. Any failure stops the VM, as KVM's
    /// `KVM_BUG_ON` does: the S-EPT and the mirror would disagree otherwise.
    pub(super) fn zap(&self, gpa: u64) -> Zap {
        let Some(page) = self.mirror_page(gpa) else {
            return Zap::NotMapped;
        };
        let exec = self.executor();
        let _mmu = self.mmu_lock.write();
        let Ok(frozen) = FrozenSpte::freeze(page, present_spte(gpa)) else {
            return Zap::NotMapped;
        };
        for op in [
            SeptOp::new_4k(Leaf::MemRangeBlock, gpa),
            SeptOp::new_4k(Leaf::MemTrack, 0),
            SeptOp::new_4k(Leaf::MemPageRemove, gpa),
        ] {
            // The guard drops at once: this kick only waits for the exits.
            if op.leaf == Leaf::MemPageRemove && exec.kick_and_wait().is_err() {
                self.stop(
                    Leaf::MemTrack,
                    Some(VmBugReason::KickTimeout),
                    Status::SUCCESS,
                    false,
                );
                return Zap::Stopped;
            }
            let start_ns = self.clock.now_ns();
            let mut issuer = Issuer::new(self);
            let outcome = exec.run(&op, &mut issuer);
            self.note_op(
                outcome.tries(),
                self.clock.now_ns().saturating_sub(start_ns),
            );
            let (reason, status) = match outcome {
                Outcome::Done { .. } => continue,
                Outcome::VmBug { reason, status, .. } => (Some(reason), status),
                Outcome::Busy { status } | Outcome::Error { status, .. } => (None, status),
            };
            // The mirror keeps the old value; the VM never runs again.
            drop(frozen);
            self.stop(op.leaf, reason, status, issuer.injected());
            return Zap::Stopped;
        }
        // The frozen SPTE held the present value: commit cannot fail.
        let _ = frozen.commit(NONPRESENT_SPTE);
        Zap::Zapped
    }
}
