// SPDX-License-Identifier: GPL-2.0

//! Event counters, rendered one `name value` line each (for debugfs).

use core::fmt;

use super::status::{Leaf, Operand, Status, StatusKind};

/// One counter. The kernel implements it over an atomic; updates need no
/// ordering.
pub trait CounterCell {
    /// Adds `n`.
    fn add(&self, n: u64);
    /// The current value.
    fn get(&self) -> u64;
    /// Sets the counter to zero.
    fn reset(&self);
}

/// Number of counters in [`Counters`].
pub const NR_COUNTERS: usize = 32;

/// Every counter the policy keeps. Names are the field names.
#[derive(Default)]
pub struct Counters<C: CounterCell> {
    /// Operations run by the executor.
    pub ops: C,
    /// SEAMCALLs issued by the executor.
    pub seamcalls: C,
    /// Busy TDH.VP.ENTER results reported to the zero-step detector.
    pub busy_enter: C,
    /// Busy TDH.MEM.PAGE.ADD results.
    pub busy_page_add: C,
    /// Busy TDH.MEM.SEPT.ADD results.
    pub busy_sept_add: C,
    /// Busy TDH.MEM.PAGE.AUG results.
    pub busy_aug: C,
    /// Busy TDH.MEM.RANGE.BLOCK results.
    pub busy_block: C,
    /// Busy TDH.MEM.PAGE.REMOVE results.
    pub busy_remove: C,
    /// Busy TDH.MEM.TRACK results.
    pub busy_track: C,
    /// `TDX_OPERAND_BUSY` naming the S-EPT tree (0x92).
    pub busy_operand_sept: C,
    /// `TDX_OPERAND_BUSY` naming RCX, the S-EPT entry (0x01).
    pub busy_operand_rcx: C,
    /// `TDX_OPERAND_BUSY` naming RDX (0x02).
    pub busy_operand_rdx: C,
    /// `TDX_OPERAND_BUSY` naming R8, the target page (0x08).
    pub busy_operand_r8: C,
    /// `TDX_OPERAND_BUSY` naming the TDR (0x80).
    pub busy_operand_tdr: C,
    /// `TDX_OPERAND_BUSY` naming the TD epoch (0xa9).
    pub busy_operand_td_epoch: C,
    /// `TDX_OPERAND_BUSY` naming op_state (0xac).
    pub busy_operand_op_state: C,
    /// `TDX_OPERAND_BUSY` naming any other operand.
    pub busy_operand_other: C,
    /// `TDX_PREVIOUS_TLB_EPOCH_BUSY` from TDH.MEM.TRACK.
    pub busy_prev_tlb_epoch: C,
    /// Kicks (gate raised or kept up, vCPUs read, IPIs sent, acks awaited).
    pub kicks: C,
    /// vCPUs found in guest mode and sent a kick.
    pub vcpus_kicked: C,
    /// Kicks whose acks did not all arrive before the platform's deadline.
    pub kick_timeouts: C,
    /// SEAMCALLs issued again after a busy one.
    pub retries: C,
    /// Operations that succeeded after at least one retry.
    pub retry_successes: C,
    /// [`super::retry::Policy::BlindRetry`] warnings (try 16, 32, ... 1024).
    pub retry_warnings: C,
    /// Busy results handed back for the caller to re-fault
    /// ([`super::retry::Policy::Upstream72`] map path).
    pub busy_returned: C,
    /// Operations that ended in a VM bug (the caller stops the VM).
    pub vm_bugs: C,
    /// Operations that ended in a non-busy error, passed through.
    pub errors: C,
    /// SPTE freezes that found the SPTE changed or frozen (counted by the
    /// caller of [`super::spte::FrozenSpte::freeze`]).
    pub freeze_contended: C,
    /// Entries refused because the gate was up (counted by the vCPU loop).
    pub entries_refused: C,
    /// Times the zero-step detector saw the mitigation engage.
    pub zero_step_events: C,
    /// Zero-step verdicts that asked for a kick-and-wait.
    pub zero_step_kicks: C,
    /// Nanoseconds kickers spent sending kicks and waiting for acks.
    pub gate_wait_ns: C,
}

impl<C: CounterCell + Default> Counters<C> {
    /// All counters at zero.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<C: CounterCell> Counters<C> {
    /// Every counter with its name, in rendering order.
    pub fn entries(&self) -> [(&'static str, &C); NR_COUNTERS] {
        [
            ("ops", &self.ops),
            ("seamcalls", &self.seamcalls),
            ("busy_enter", &self.busy_enter),
            ("busy_page_add", &self.busy_page_add),
            ("busy_sept_add", &self.busy_sept_add),
            ("busy_aug", &self.busy_aug),
            ("busy_block", &self.busy_block),
            ("busy_remove", &self.busy_remove),
            ("busy_track", &self.busy_track),
            ("busy_operand_sept", &self.busy_operand_sept),
            ("busy_operand_rcx", &self.busy_operand_rcx),
            ("busy_operand_rdx", &self.busy_operand_rdx),
            ("busy_operand_r8", &self.busy_operand_r8),
            ("busy_operand_tdr", &self.busy_operand_tdr),
            ("busy_operand_td_epoch", &self.busy_operand_td_epoch),
            ("busy_operand_op_state", &self.busy_operand_op_state),
            ("busy_operand_other", &self.busy_operand_other),
            ("busy_prev_tlb_epoch", &self.busy_prev_tlb_epoch),
            ("kicks", &self.kicks),
            ("vcpus_kicked", &self.vcpus_kicked),
            ("kick_timeouts", &self.kick_timeouts),
            ("retries", &self.retries),
            ("retry_successes", &self.retry_successes),
            ("retry_warnings", &self.retry_warnings),
            ("busy_returned", &self.busy_returned),
            ("vm_bugs", &self.vm_bugs),
            ("errors", &self.errors),
            ("freeze_contended", &self.freeze_contended),
            ("entries_refused", &self.entries_refused),
            ("zero_step_events", &self.zero_step_events),
            ("zero_step_kicks", &self.zero_step_kicks),
            ("gate_wait_ns", &self.gate_wait_ns),
        ]
    }

    /// Iterates `(name, counter)` pairs in rendering order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &C)> + '_ {
        self.entries().into_iter()
    }

    /// Writes one `name value` line per counter.
    pub fn render<W: fmt::Write>(&self, out: &mut W) -> fmt::Result {
        for (name, cell) in self.iter() {
            writeln!(out, "{name} {}", cell.get())?;
        }
        Ok(())
    }

    /// Zeroes every counter.
    pub fn reset(&self) {
        for (_, cell) in self.iter() {
            cell.reset();
        }
    }

    /// The busy counter for `leaf`.
    pub fn busy_leaf(&self, leaf: Leaf) -> &C {
        match leaf {
            Leaf::VpEnter => &self.busy_enter,
            Leaf::MemPageAdd => &self.busy_page_add,
            Leaf::MemSeptAdd => &self.busy_sept_add,
            Leaf::MemPageAug => &self.busy_aug,
            Leaf::MemRangeBlock => &self.busy_block,
            Leaf::MemPageRemove => &self.busy_remove,
            Leaf::MemTrack => &self.busy_track,
        }
    }

    /// The busy counter for `operand`.
    pub fn busy_operand(&self, operand: Operand) -> &C {
        match operand {
            Operand::Sept => &self.busy_operand_sept,
            Operand::Rcx => &self.busy_operand_rcx,
            Operand::Rdx => &self.busy_operand_rdx,
            Operand::R8 => &self.busy_operand_r8,
            Operand::Tdr => &self.busy_operand_tdr,
            Operand::TdEpoch => &self.busy_operand_td_epoch,
            Operand::OpState => &self.busy_operand_op_state,
            Operand::Other(_) => &self.busy_operand_other,
        }
    }

    /// Counts a busy `status` from `leaf`: by leaf, and by operand or as
    /// `busy_prev_tlb_epoch`.
    pub fn count_busy(&self, leaf: Leaf, status: Status) {
        self.busy_leaf(leaf).add(1);
        match status.kind() {
            StatusKind::OperandBusy(operand) => self.busy_operand(operand).add(1),
            StatusKind::PreviousTlbEpochBusy => self.busy_prev_tlb_epoch.add(1),
            _ => {}
        }
    }
}
