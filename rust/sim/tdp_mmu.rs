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
use crate::platform::sync::{
    KAtomic64, //
};
use crate::policy::{
    Atomic64,
    CounterCell,
    FrozenSpte,
    Leaf,
    Outcome,
    Seamcall,
    SeptOp,
    Status,
    VmBugReason, //
};

/// Issues SEAMCALLs to the simulated TDX module.
struct Issuer<'a>(&'a TdxModule);

impl Seamcall for Issuer<'_> {
    fn seamcall(&mut self, op: &SeptOp) -> Status {
        self.0.seamcall(op)
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
    pub(crate) fn release(&self, gpa: u64) {
        if self.zap(gpa) == Zap::Zapped {
            self.sim_counters.sim_zaps.add(1);
        }
    }

    /// Handles a private EPT violation on `gpa`: TDH.MEM.SEPT.ADD if the
    /// S-EPT page is missing, then TDH.MEM.PAGE.AUG.
    ///
    /// `kick_first` is the zero-step response: the vCPUs are kicked and held
    /// out (gate up) while the fault is resolved, instead of entering again.
    pub(crate) fn handle_fault(&self, gpa: u64, kick_first: bool) -> Fault {
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
            NONPRESENT_SPTE => match self.map_one(&exec, table, present_spte(table_gpa), &table_op)
            {
                Fault::Mapped => {}
                other => return other,
            },
            v if v == present_spte(table_gpa) => {}
            // Frozen by another fault on the same S-EPT page.
            _ => return Fault::Retry,
        }
        match page.load_acquire() {
            NONPRESENT_SPTE => {
                let op = SeptOp::new_4k(Leaf::MemPageAug, gpa);
                self.map_one(&exec, page, present_spte(gpa), &op)
            }
            v if v == present_spte(gpa) => Fault::Mapped,
            _ => Fault::Retry,
        }
    }

    fn map_one(&self, exec: &VmExecutor<'_>, spte: &KAtomic64, new: u64, op: &SeptOp) -> Fault {
        let outcome = exec.run_on_spte(spte, NONPRESENT_SPTE, new, op, &mut Issuer(&self.module));
        if let Ok(done) = outcome {
            self.note_tries(done.tries());
        }
        match outcome {
            // Another host task froze or changed the SPTE first.
            Err(_) => Fault::Retry,
            Ok(Outcome::Done { .. }) => Fault::Mapped,
            Ok(Outcome::Busy { .. }) => Fault::Retry,
            Ok(Outcome::Error { status, .. }) => {
                self.stop(op.leaf, None, status);
                Fault::Stopped
            }
            Ok(Outcome::VmBug { reason, status, .. }) => {
                self.stop(op.leaf, Some(reason), status);
                Fault::Stopped
            }
        }
    }

    /// Zaps the 4K page at `gpa` if it is mapped: TDH.MEM.RANGE.BLOCK,
    /// TDH.MEM.TRACK, a kick of every vCPU (as KVM does after TRACK, so that
    /// no vCPU still runs in the old TLB epoch), TDH.MEM.PAGE.REMOVE. The
    /// SPTE stays frozen throughout. Any failure stops the VM, as KVM's
    /// `KVM_BUG_ON` does: the S-EPT and the mirror would disagree otherwise.
    pub(crate) fn zap(&self, gpa: u64) -> Zap {
        let Some(page) = self.mirror_page(gpa) else {
            return Zap::NotMapped;
        };
        let exec = self.executor();
        let _mmu = self.mmu_lock.write();
        let Ok(frozen) = FrozenSpte::freeze(page, present_spte(gpa)) else {
            return Zap::NotMapped;
        };
        let mut issuer = Issuer(&self.module);
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
                );
                return Zap::Stopped;
            }
            let outcome = exec.run(&op, &mut issuer);
            self.note_tries(outcome.tries());
            let (reason, status) = match outcome {
                Outcome::Done { .. } => continue,
                Outcome::VmBug { reason, status, .. } => (Some(reason), status),
                Outcome::Busy { status } | Outcome::Error { status, .. } => (None, status),
            };
            // The mirror keeps the old value; the VM never runs again.
            drop(frozen);
            self.stop(op.leaf, reason, status);
            return Zap::Stopped;
        }
        // The frozen SPTE held the present value: commit cannot fail.
        let _ = frozen.commit(NONPRESENT_SPTE);
        Zap::Zapped
    }
}
