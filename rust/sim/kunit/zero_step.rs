// SPDX-License-Identifier: GPL-2.0

//! The zero-step detector, alone and in a storm against the simulator.

use kernel::macros::kunit_tests;

#[kunit_tests(tdx_sept_guard_zero_step)]
mod tests {
    use super::super::test_vm;
    use crate::platform::sync::KCounter;
    use crate::platform::thread::{
        run_on_cpu,
        sleep_ms, //
    };
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
    use kernel::time::{
        Instant,
        Monotonic, //
    };

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
    /// faults on X, with the upstream map policy handing busy back, and
    /// re-enters after every busy fault, as KVM 7.2 does when its local
    /// retry breaks off (an event pending) and as it did before it had
    /// one. The TDX module engages zero-step mitigation; the detector sees
    /// it and kicks; the fault resolves.
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
                vm.module.ept_violation_exit(&mut zs, X, X);
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

    /// What vCPU 0 did to get one access to a hogged page done.
    struct HogRun {
        /// vCPU 0's TDH.VP.ENTER calls.
        enters: u64,
        /// Times the TDX module's zero-step mitigation engaged.
        engaged: u64,
        busy_aug: u64,
        local_retries: u64,
        kicks: u64,
        max_tries: u64,
        faults_resolved: u64,
        done: bool,
        stopped: bool,
        ms: i64,
    }

    /// vCPU 1's guest holds X's entry lock in a long ACCEPT (until it is
    /// kicked, or for 100 ms); then vCPU 0, a real vCPU thread, touches X
    /// once. Its fault handler must map X under `policy`.
    fn hog_scenario(policy: Policy) -> Result<HogRun> {
        let vm = test_vm(2, policy)?;
        // The S-EPT page first, so that only the leaf is contended.
        assert_eq!(vm.handle_fault(X + 0x1000, false), Fault::Mapped);
        vm.reset_stats();
        vm.inject.arm_hog(1, X);
        let hog = Workload::start_some(vm.clone(), u64::MAX, 1 << 1, false)?;
        let mut waited = 0;
        while !vm.module.page_locked(X) && waited < 5000 {
            sleep_ms(1);
            waited += 1;
        }
        assert!(vm.module.page_locked(X));
        vm.inject.arm_touch(0, X);
        let start = Instant::<Monotonic>::now();
        let vcpu0 = Workload::start_some(vm.clone(), 1, 1 << 0, false)?;
        let mut waited = 0;
        while vm.sim_counters.sim_guest_ops.get() == 0 && waited < 5000 {
            sleep_ms(1);
            waited += 1;
        }
        let ms = start.elapsed().as_millis();
        // The hog stops as a hog: disarmed first, it would go on as an
        // ordinary vCPU and add its own faults to the counts.
        drop(vcpu0);
        drop(hog);
        vm.inject.disarm_hog();
        Ok(HogRun {
            enters: vm.vcpus[0].enters.get(),
            engaged: vm.module.stats.sim_mitigation_engaged.get(),
            busy_aug: vm.counters.busy_aug.get(),
            local_retries: vm.sim_counters.sim_local_retries.get(),
            kicks: vm.counters.kicks.get(),
            max_tries: vm.sim_counters.sim_max_tries.get(),
            faults_resolved: vm.fault_ns.count(),
            done: vm.sim_counters.sim_guest_ops.get() == 1,
            stopped: vm.is_stopped(),
            ms,
        })
    }

    /// KVM 7.2 (`Policy::Upstream72`): the AUG's busy goes back as
    /// `RET_PF_RETRY` and `tdx_handle_ept_violation()` runs the fault again
    /// without re-entering, until the hog lets go by itself. vCPU 0 enters
    /// twice (the faulting access and the one after the map), the TDX
    /// module never engages zero-step mitigation, and the contention is
    /// paid in busy AUGs instead. Handing busy back to a re-entering
    /// vCPU instead (the simulator before it modelled the local retry)
    /// enters at least seven times and engages the mitigation.
    #[test]
    fn upstream72_retries_a_busy_fault_locally_without_reentering() -> Result {
        let run = hog_scenario(Policy::Upstream72)?;
        pr_info!(
            "upstream72 hog: {} enters, {} engaged, {} busy AUGs, {} local retries, {} faults, {} ms\n",
            run.enters,
            run.engaged,
            run.busy_aug,
            run.local_retries,
            run.faults_resolved,
            run.ms
        );
        assert!(run.done);
        assert!(!run.stopped);
        assert_eq!(run.enters, 2);
        assert_eq!(run.engaged, 0);
        assert_eq!(run.faults_resolved, 1);
        assert!(run.busy_aug >= 2);
        assert!(run.local_retries >= 1);
        // One operation for the whole local retry: every AUG counted in it.
        assert!(run.max_tries >= run.busy_aug);
        Ok(())
    }

    /// The same scenario under the policy: one busy AUG, one kick (the hog
    /// leaves at once), one retry that succeeds; no local retry needed.
    #[test]
    fn kick_and_retry_resolves_the_hogged_fault_in_two_seamcalls() -> Result {
        let run = hog_scenario(Policy::DEFAULT)?;
        pr_info!(
            "kick_and_retry hog: {} enters, {} busy AUGs, {} kicks, {} ms\n",
            run.enters,
            run.busy_aug,
            run.kicks,
            run.ms
        );
        assert!(run.done);
        assert!(!run.stopped);
        assert_eq!(run.enters, 2);
        assert_eq!(run.engaged, 0);
        assert_eq!(run.faults_resolved, 1);
        assert_eq!(run.busy_aug, 1);
        assert!(run.kicks >= 1);
        assert_eq!(run.local_retries, 0);
        assert_eq!(run.max_tries, 2);
        Ok(())
    }
}
