// SPDX-License-Identifier: GPL-2.0

//! The zero-step detector, alone and in a storm against the simulator.

use kernel::macros::kunit_tests;

#[kunit_tests(tdx_sept_guard_zero_step)]
mod tests {
    use super::super::sleep_ms;
    use super::super::{
        run_on_cpu,
        test_vm, //
    };
    use crate::platform::sync::KCounter;
    use crate::policy::zero_step::ZERO_STEP_ENGAGE_AT;
    use crate::policy::*;
    use crate::sim::tdp_mmu::Fault;
    use crate::sim::tdx_module::{
        Accept,
        Enter,
        ZeroStepState,
        PENDING, //
    };
    use crate::sim::workload::Workload;
    use kernel::prelude::*;

    const X: u64 = 0x5000;

    #[test]
    fn the_seventh_fault_on_one_gpa_asks_for_kick_and_wait() {
        let counters = Counters::<KCounter>::new();
        let mut zs = ZeroStep::new();
        for _ in 1..ZERO_STEP_ENGAGE_AT {
            assert_eq!(zs.on_ept_violation(X, &counters), ZeroStepVerdict::Reenter);
        }
        assert_eq!(
            zs.on_ept_violation(X, &counters),
            ZeroStepVerdict::KickAndWait
        );
        assert_eq!(counters.zero_step_events.get(), 1);
        // Progress ends the streak; a new GPA starts a new one.
        zs.on_progress();
        assert_eq!(zs.on_ept_violation(X, &counters), ZeroStepVerdict::Reenter);
        assert_eq!(
            zs.on_ept_violation(X + 0x1000, &counters),
            ZeroStepVerdict::Reenter
        );
        assert_eq!(zs.streak(), 1);
    }

    #[test]
    fn vp_enter_busy_on_the_sept_tree_is_an_event() {
        let counters = Counters::<KCounter>::new();
        let mut zs = ZeroStep::new();
        let epoch_busy = Status::operand_busy(Operand::TdEpoch);
        assert_eq!(
            zs.on_enter_status(epoch_busy, &counters),
            ZeroStepVerdict::Reenter
        );
        let sept_busy = Status::operand_busy(Operand::Sept);
        assert_eq!(
            zs.on_enter_status(sept_busy, &counters),
            ZeroStepVerdict::KickAndWait
        );
        assert_eq!(counters.zero_step_events.get(), 1);
        assert_eq!(counters.busy_enter.get(), 2);
    }

    /// vCPU 1 (a real thread) keeps a long ACCEPT of X going, holding X's
    /// S-EPT entry lock until it is kicked. This test plays vCPU 0, which
    /// faults on X, with the upstream map policy: busy goes back to the
    /// guest, which faults again. The TDX module engages zero-step
    /// mitigation; the detector sees it and kicks; the fault resolves.
    #[test]
    fn a_zero_step_storm_is_resolved_by_kick_and_wait() -> Result {
        let vm = test_vm(2, Policy::Upstream72)?;
        vm.inject.arm_hog(1, X);
        let work = Workload::start_some(vm.clone(), u64::MAX, 1 << 1, false)?;
        // The S-EPT page first, so that only the leaf is contended.
        let table = vm.handle_fault(X + 0x1000, false);
        // vCPU 0's host side runs on CPU 0, away from the hog on CPU 1.
        let host_vm = vm.clone();
        let (mut zs, hogged, faults, outcome, reentries_exited) = run_on_cpu(0, move || {
            let vm = &host_vm;
            let mut zs = ZeroStepState::new();
            let mut waited = 0;
            while !vm.module.page_locked(X) && waited < 5000 {
                sleep_ms(1);
                waited += 1;
            }
            let hogged = vm.module.page_locked(X);
            let mut detector = ZeroStep::new();
            let (mut faults, mut outcome, mut exited) = (0, Fault::Retry, true);
            while outcome == Fault::Retry && faults < 2 * ZERO_STEP_ENGAGE_AT {
                vm.module.ept_violation_exit(&mut zs, X);
                faults += 1;
                let verdict = detector.on_ept_violation(X, &vm.counters);
                outcome = vm.handle_fault(X, verdict == ZeroStepVerdict::KickAndWait);
                if outcome == Fault::Retry && zs.active() {
                    // Mitigation is on: VP.ENTER walks X and exits for it.
                    exited &= matches!(vm.module.vp_enter(&zs), Enter::EptViolation(X));
                }
            }
            (zs, hogged, faults, outcome, exited)
        })?;
        vm.inject.disarm_hog();
        drop(work);

        assert_eq!(table, Fault::Mapped);
        assert!(hogged);
        assert!(reentries_exited);
        assert_eq!(outcome, Fault::Mapped);
        assert_eq!(faults, ZERO_STEP_ENGAGE_AT);
        assert_eq!(vm.module.stats.sim_mitigation_engaged.get(), 1);
        assert_eq!(vm.counters.zero_step_events.get(), 1);
        assert_eq!(
            vm.counters.busy_returned.get(),
            u64::from(ZERO_STEP_ENGAGE_AT - 1)
        );
        assert_eq!(
            vm.counters.busy_aug.get(),
            u64::from(ZERO_STEP_ENGAGE_AT - 1)
        );
        assert!(vm.counters.vcpus_kicked.get() >= 1);
        assert_eq!(vm.module.page_state(X), Some(PENDING));

        // vCPU 0 now enters: the listed GPA resolves, the guest accepts it.
        let Enter::Entered { epoch } = vm.module.vp_enter(&zs) else {
            return Err(EINVAL);
        };
        assert_eq!(vm.module.guest_accept(X), Accept::Accepted);
        vm.module.td_exit(epoch);
        vm.module.progress_exit(&mut zs);
        assert!(!zs.active());
        assert!(!vm.is_stopped());
        Ok(())
    }
}
