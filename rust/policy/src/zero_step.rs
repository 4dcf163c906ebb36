// SPDX-License-Identifier: GPL-2.0

//! Per-vCPU zero-step detector.
//!
//! The TDX module counts private-GPA EPT violations at the same guest RIP; once
//! the count passes `STEPPING_EPF_THRESHOLD` (6, module `td_exit_stepping.c`)
//! its zero-step mitigation engages on the 7th fault: each TDH.VP.ENTER then
//! takes the S-EPT tree lock exclusively to re-walk the faulting GPAs, which
//! collides with host AUG/SEPT.ADD (shared) and can return `TDX_OPERAND_BUSY`
//! with operand SEPT. KVM 7.2's `tdx_handle_ept_violation()`
//! (`arch/x86/kvm/vmx/tdx.c`) describes this ("If TDH.VP.ENTER is invoked more
//! times than the threshold set by the TDX module before KVM resolves the
//! private GPA mapping, the TDX module will activate zero-step mitigation")
//! and `tdx_exit_handlers_fastpath()` notes that VP.ENTER's busy SEPT comes
//! from "0-step mitigation"; neither names the number.
//!
//! The host cannot see a TD's RIP, so the detector uses the faulting GPA as the
//! "same place": a streak of EPT violations on one GPA with no progress. When
//! the streak reaches the 7th fault, or VP.ENTER comes back busy on the S-EPT
//! tree, it reports an event and answers [`ZeroStepVerdict::KickAndWait`]
//! rather than another blind entry, as the LKML thread asks. The caller
//! learns from [`ZeroStep::engaged_now`] that this exit was the event (the
//! module traces it).

use super::counters::{CounterCell, Counters};
use super::status::{Leaf, Operand, Status, StatusKind};

/// The TDX module's `STEPPING_EPF_THRESHOLD` (`td_exit_stepping.c`): faults at
/// one RIP that are only counted.
pub const STEPPING_EPF_THRESHOLD: u32 = 6;

/// The fault on which the mitigation engages: the 7th at the same place.
pub const ZERO_STEP_ENGAGE_AT: u32 = STEPPING_EPF_THRESHOLD + 1;

/// The longest streak [`ZeroStep::to_bits`] keeps: well past
/// [`ZERO_STEP_ENGAGE_AT`], where nothing changes any more.
pub const MAX_PACKED_STREAK: u32 = 255;

/// What the vCPU should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZeroStepVerdict {
    /// Handle the exit and re-enter as usual.
    Reenter,
    /// The mitigation is (or is about to be) engaged: kick the other vCPUs
    /// and wait (`Executor::kick_and_wait`) while resolving the fault,
    /// instead of entering blindly again.
    KickAndWait,
}

/// One vCPU's zero-step state. Owned by the vCPU thread; no atomics.
#[derive(Clone, Debug, Default)]
pub struct ZeroStep {
    gpa: Option<u64>,
    streak: u32,
    engaged: bool,
    /// The last `on_*` call engaged it.
    engaged_now: bool,
}

impl ZeroStep {
    /// No streak.
    pub const fn new() -> Self {
        Self {
            gpa: None,
            streak: 0,
            engaged: false,
            engaged_now: false,
        }
    }

    /// Consecutive EPT violations on the current GPA with no progress.
    pub fn streak(&self) -> u32 {
        self.streak
    }

    /// True once the mitigation is judged engaged, until progress.
    pub fn is_engaged(&self) -> bool {
        self.engaged
    }

    /// The GPA of the current streak of EPT violations, if there is one.
    pub fn gpa(&self) -> Option<u64> {
        self.gpa
    }

    /// True if the last [`Self::on_ept_violation`] or
    /// [`Self::on_enter_status`] engaged the mitigation: that exit was the
    /// zero-step event (`zero_step_events` counted it). Later exits of the
    /// same streak still answer [`ZeroStepVerdict::KickAndWait`] but are not
    /// new events.
    pub fn engaged_now(&self) -> bool {
        self.engaged_now
    }

    /// Records a private-GPA EPT violation at `gpa`. A different GPA counts as
    /// progress and starts a new streak.
    pub fn on_ept_violation<C: CounterCell>(
        &mut self,
        gpa: u64,
        counters: &Counters<C>,
    ) -> ZeroStepVerdict {
        self.engaged_now = false;
        if self.gpa != Some(gpa) {
            self.on_progress();
            self.gpa = Some(gpa);
        }
        self.streak = self.streak.saturating_add(1);
        if self.streak >= ZERO_STEP_ENGAGE_AT {
            self.engage(counters);
        }
        self.verdict(counters)
    }

    /// Records the status of a TDH.VP.ENTER. `TDX_OPERAND_BUSY` on the S-EPT
    /// tree means the mitigation is active; other statuses change nothing.
    pub fn on_enter_status<C: CounterCell>(
        &mut self,
        status: Status,
        counters: &Counters<C>,
    ) -> ZeroStepVerdict {
        self.engaged_now = false;
        if !status.is_operand_busy() {
            return ZeroStepVerdict::Reenter;
        }
        counters.count_busy(Leaf::VpEnter, status);
        if status.kind() == StatusKind::OperandBusy(Operand::Sept) {
            self.engage(counters);
        }
        self.verdict(counters)
    }

    /// The vCPU made progress (e.g. an exit for another reason, or the fault
    /// was resolved): the streak ends.
    pub fn on_progress(&mut self) {
        *self = Self::new();
    }

    /// The state in 64 bits, for a caller that keeps one detector per vCPU
    /// in an atomic word (no lock on the fault path). Keeps the page of the
    /// GPA (bits 12 and up) and the streak up to [`MAX_PACKED_STREAK`]:
    /// [`Self::from_bits`] gives back an equal detector when the GPAs fed to
    /// it were page-aligned, and one that answers the same way otherwise.
    pub fn to_bits(&self) -> u64 {
        let streak = u64::from(self.streak.min(MAX_PACKED_STREAK));
        let gpa = self.gpa.map_or(0, |g| (g & !0xfff) | 1);
        gpa | (u64::from(self.engaged) << 1) | (u64::from(self.engaged_now) << 2) | (streak << 3)
    }

    /// The detector [`Self::to_bits`] packed.
    pub fn from_bits(bits: u64) -> Self {
        Self {
            gpa: (bits & 1 != 0).then_some(bits & !0xfff),
            streak: ((bits >> 3) & u64::from(MAX_PACKED_STREAK)) as u32,
            engaged: bits & 2 != 0,
            engaged_now: bits & 4 != 0,
        }
    }

    fn engage<C: CounterCell>(&mut self, counters: &Counters<C>) {
        if !self.engaged {
            self.engaged = true;
            self.engaged_now = true;
            counters.zero_step_events.add(1);
        }
    }

    fn verdict<C: CounterCell>(&self, counters: &Counters<C>) -> ZeroStepVerdict {
        if self.engaged {
            counters.zero_step_kicks.add(1);
            ZeroStepVerdict::KickAndWait
        } else {
            ZeroStepVerdict::Reenter
        }
    }
}
