// SPDX-License-Identifier: GPL-2.0

//! Zero-step detector rules.

mod common;

use common::HostCounters;
use tdx_sept_guard_policy::status::{
    TDX_OPERAND_BUSY, TDX_OPERAND_ID_SEPT, TDX_OPERAND_ID_TD_EPOCH,
};
use tdx_sept_guard_policy::zero_step::{STEPPING_EPF_THRESHOLD, ZERO_STEP_ENGAGE_AT};
use tdx_sept_guard_policy::{CounterCell, Status, ZeroStep, ZeroStepVerdict};

#[test]
fn threshold_is_the_modules() {
    assert_eq!(STEPPING_EPF_THRESHOLD, 6);
    assert_eq!(ZERO_STEP_ENGAGE_AT, 7);
}

#[test]
fn seventh_fault_at_same_gpa_engages() {
    let c = HostCounters::new();
    let mut z = ZeroStep::new();
    for n in 1..=6 {
        assert_eq!(
            z.on_ept_violation(0x5000, &c),
            ZeroStepVerdict::Reenter,
            "fault {n}"
        );
    }
    assert_eq!(z.on_ept_violation(0x5000, &c), ZeroStepVerdict::KickAndWait);
    assert_eq!(z.streak(), 7);
    assert!(z.is_engaged());
    assert_eq!(c.zero_step_events.get(), 1);
    // Further faults keep asking for a kick but are the same event.
    assert_eq!(z.on_ept_violation(0x5000, &c), ZeroStepVerdict::KickAndWait);
    assert_eq!(c.zero_step_events.get(), 1);
    assert_eq!(c.zero_step_kicks.get(), 2);
}

#[test]
fn different_gpa_restarts_the_streak() {
    let c = HostCounters::new();
    let mut z = ZeroStep::new();
    for _ in 0..6 {
        z.on_ept_violation(0x5000, &c);
    }
    assert_eq!(z.on_ept_violation(0x6000, &c), ZeroStepVerdict::Reenter);
    assert_eq!(z.streak(), 1);
    for _ in 0..5 {
        assert_eq!(z.on_ept_violation(0x6000, &c), ZeroStepVerdict::Reenter);
    }
    assert_eq!(z.on_ept_violation(0x6000, &c), ZeroStepVerdict::KickAndWait);
}

#[test]
fn gpa_zero_is_a_real_gpa() {
    let c = HostCounters::new();
    let mut z = ZeroStep::new();
    for _ in 0..7 {
        z.on_ept_violation(0, &c);
    }
    assert!(z.is_engaged());
}

#[test]
fn progress_resets_and_disengages() {
    let c = HostCounters::new();
    let mut z = ZeroStep::new();
    for _ in 0..7 {
        z.on_ept_violation(0x5000, &c);
    }
    z.on_progress();
    assert_eq!(z.streak(), 0);
    assert!(!z.is_engaged());
    assert_eq!(z.on_ept_violation(0x5000, &c), ZeroStepVerdict::Reenter);
    // A new streak that engages is a new event.
    for _ in 0..6 {
        z.on_ept_violation(0x5000, &c);
    }
    assert_eq!(c.zero_step_events.get(), 2);
}

#[test]
fn enter_busy_on_sept_means_mitigation_is_active() {
    let c = HostCounters::new();
    let mut z = ZeroStep::new();
    let busy_sept = Status::from_raw(TDX_OPERAND_BUSY | u64::from(TDX_OPERAND_ID_SEPT));
    assert_eq!(
        z.on_enter_status(busy_sept, &c),
        ZeroStepVerdict::KickAndWait
    );
    assert_eq!(c.zero_step_events.get(), 1);
    assert_eq!(c.busy_enter.get(), 1);
    assert_eq!(c.busy_operand_sept.get(), 1);
}

#[test]
fn enter_busy_on_epoch_or_success_changes_nothing() {
    let c = HostCounters::new();
    let mut z = ZeroStep::new();
    let busy_epoch = Status::from_raw(TDX_OPERAND_BUSY | u64::from(TDX_OPERAND_ID_TD_EPOCH));
    assert_eq!(z.on_enter_status(busy_epoch, &c), ZeroStepVerdict::Reenter);
    assert_eq!(
        z.on_enter_status(Status::SUCCESS, &c),
        ZeroStepVerdict::Reenter
    );
    assert!(!z.is_engaged());
    assert_eq!(c.zero_step_events.get(), 0);
    assert_eq!(c.busy_operand_td_epoch.get(), 1);
}

#[test]
fn engaged_now_is_true_on_the_engaging_exit_only() {
    let c = HostCounters::new();
    let mut z = ZeroStep::new();
    for n in 1..=6 {
        z.on_ept_violation(0x5000, &c);
        assert!(!z.engaged_now(), "fault {n}");
    }
    z.on_ept_violation(0x5000, &c);
    assert!(z.engaged_now());
    assert_eq!(z.gpa(), Some(0x5000));
    // The same streak goes on: no new event.
    z.on_ept_violation(0x5000, &c);
    assert!(!z.engaged_now());
    assert!(z.is_engaged());
    let busy_sept = Status::from_raw(TDX_OPERAND_BUSY | u64::from(TDX_OPERAND_ID_SEPT));
    z.on_enter_status(busy_sept, &c);
    assert!(!z.engaged_now());
    z.on_progress();
    assert!(!z.engaged_now());
    assert_eq!(z.gpa(), None);
    // A busy VP.ENTER on the S-EPT tree engages a fresh detector at once.
    assert_eq!(
        z.on_enter_status(busy_sept, &c),
        ZeroStepVerdict::KickAndWait
    );
    assert!(z.engaged_now());
    z.on_enter_status(Status::SUCCESS, &c);
    assert!(!z.engaged_now());
    assert_eq!(c.zero_step_events.get(), 2);
}

mod packed {
    use super::*;
    use proptest::prelude::*;
    use tdx_sept_guard_policy::zero_step::MAX_PACKED_STREAK;

    /// One observation: a fault on one of a few pages, a busy or clean
    /// TDH.VP.ENTER, or progress.
    #[derive(Clone, Debug)]
    enum Step {
        Fault(u64),
        Enter(u64),
        Progress,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            6 => (0u64..3).prop_map(|p| Step::Fault(0x7000 + p * 0x1000)),
            1 => prop_oneof![
                Just(0u64),
                Just(TDX_OPERAND_BUSY | u64::from(TDX_OPERAND_ID_SEPT)),
                Just(TDX_OPERAND_BUSY | u64::from(TDX_OPERAND_ID_TD_EPOCH)),
            ]
            .prop_map(Step::Enter),
            1 => Just(Step::Progress),
        ]
    }

    fn apply(z: &mut ZeroStep, s: &Step, c: &HostCounters) -> Option<ZeroStepVerdict> {
        match s {
            Step::Fault(gpa) => Some(z.on_ept_violation(*gpa, c)),
            Step::Enter(raw) => Some(z.on_enter_status(Status::from_raw(*raw), c)),
            Step::Progress => {
                z.on_progress();
                None
            }
        }
    }

    proptest! {
        /// A detector kept packed between observations (as the KVM backend
        /// keeps one per vCPU in an atomic word) answers and counts exactly
        /// as one kept whole.
        #[test]
        fn packed_detector_behaves_as_the_whole_one(steps in prop::collection::vec(step(), 0..400)) {
            let (whole_c, packed_c) = (HostCounters::new(), HostCounters::new());
            let mut whole = ZeroStep::new();
            let mut bits = ZeroStep::new().to_bits();
            for s in &steps {
                let mut z = ZeroStep::from_bits(bits);
                let got = apply(&mut z, s, &packed_c);
                bits = z.to_bits();
                prop_assert_eq!(got, apply(&mut whole, s, &whole_c));
                let back = ZeroStep::from_bits(bits);
                prop_assert_eq!(back.gpa(), whole.gpa());
                prop_assert_eq!(back.is_engaged(), whole.is_engaged());
                prop_assert_eq!(back.engaged_now(), whole.engaged_now());
                prop_assert_eq!(back.streak(), whole.streak().min(MAX_PACKED_STREAK));
            }
            prop_assert_eq!(packed_c.zero_step_events.get(), whole_c.zero_step_events.get());
            prop_assert_eq!(packed_c.zero_step_kicks.get(), whole_c.zero_step_kicks.get());
        }
    }
}
