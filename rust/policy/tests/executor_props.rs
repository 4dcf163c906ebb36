// SPDX-License-Identifier: GPL-2.0

//! Property tests for the executor's bound: no sequence of statuses makes it
//! issue more than its budget of SEAMCALLs, and it reports a VM bug exactly
//! when the last allowed try is busy (or a kick times out).

mod common;

use common::{host_gate, FakeVcpus, HostCounters, Script, StepClock};
use proptest::prelude::*;
use tdx_sept_guard_policy::gate::{IN_GUEST_MODE, OUTSIDE_GUEST_MODE};
use tdx_sept_guard_policy::status::*;
use tdx_sept_guard_policy::{
    CounterCell, Executor, MaxTries, Outcome, Policy, SeptOp, VmBugReason,
};

fn status_raw() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => Just(0u64),
        4 => prop::sample::select(vec![0x01u64, 0x02, 0x08, 0x80, 0x92, 0xa9, 0xac, 0x1234])
            .prop_map(|op| TDX_OPERAND_BUSY | op),
        2 => Just(TDX_PREVIOUS_TLB_EPOCH_BUSY),
        1 => Just(TDX_TLB_TRACKING_NOT_DONE),
        1 => any::<u64>(),
    ]
}

fn policy() -> impl Strategy<Value = Policy> {
    prop_oneof![
        4 => (MaxTries::MIN..=MaxTries::MAX).prop_map(|n| Policy::KickAndRetry {
            max_tries: MaxTries::new(n).unwrap()
        }),
        1 => Just(Policy::BlindRetry),
        2 => Just(Policy::Upstream72),
    ]
}

fn leaf() -> impl Strategy<Value = Leaf> {
    prop::sample::select(Leaf::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn bounded_and_vm_bug_iff_last_try_busy(
        policy in policy(),
        leaf in leaf(),
        script in prop::collection::vec(status_raw(), 0..12),
        after in status_raw(),
        vcpu_in_guest in any::<bool>(),
        acks in any::<bool>(),
    ) {
        let mode = if vcpu_in_guest { IN_GUEST_MODE } else { OUTSIDE_GUEST_MODE };
        let gate = host_gate();
        let vcpus = FakeVcpus::new(&[mode, OUTSIDE_GUEST_MODE]);
        vcpus.ack.set(acks);
        let counters = HostCounters::new();
        let clock = StepClock::new(1);
        let exec = Executor::new(policy, &gate, &vcpus, &counters, &clock);
        let mut sc = Script::then(&script, after);
        let op = SeptOp::new_4k(leaf, 0x4000);

        let out = exec.run(&op, &mut sc);

        // The bound, and the gate always comes back down.
        let max = policy.max_seamcalls(leaf);
        prop_assert!(sc.calls as u32 <= max);
        prop_assert!(sc.calls >= 1);
        prop_assert_eq!(out.tries(), sc.calls as u32);
        prop_assert!(!gate.is_raised());
        prop_assert_eq!(counters.seamcalls.get(), sc.calls as u64);

        // The reference model.
        let status = |i: usize| Status::from_raw(script.get(i).copied().unwrap_or(after));
        let busy = |s: Status| match policy {
            Policy::Upstream72 => s.is_operand_busy(),
            _ => s.is_busy_for(leaf),
        };
        let kicks = !matches!(policy, Policy::BlindRetry);
        let refault = matches!(policy, Policy::Upstream72) && !leaf.is_unmap();

        let expected = if refault {
            if busy(status(0)) {
                Outcome::Busy { status: status(0) }
            } else if status(0).is_success() {
                Outcome::Done { tries: 1 }
            } else {
                Outcome::Error { status: status(0), tries: 1 }
            }
        } else if kicks && max > 1 && busy(status(0)) && vcpu_in_guest && !acks {
            Outcome::VmBug { reason: VmBugReason::KickTimeout, status: status(0), tries: 1 }
        } else {
            match (0..max as usize).find(|&i| !busy(status(i))) {
                Some(i) if status(i).is_success() => Outcome::Done { tries: i as u32 + 1 },
                Some(i) => Outcome::Error { status: status(i), tries: i as u32 + 1 },
                None => Outcome::VmBug {
                    reason: if kicks && max > 1 {
                        VmBugReason::BusyAfterKick
                    } else {
                        VmBugReason::RetriesExhausted
                    },
                    status: status(max as usize - 1),
                    tries: max,
                },
            }
        };
        prop_assert_eq!(out, expected);
        prop_assert_eq!(counters.vm_bugs.get(), u64::from(matches!(out, Outcome::VmBug { .. })));
    }
}
