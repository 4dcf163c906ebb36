// SPDX-License-Identifier: GPL-2.0

//! The executor's bounds, with scripted SEAMCALL answers, in the kernel
//! (kernel atomics, a real simulated VM for the gate and the kick).

use kernel::macros::kunit_tests;

#[kunit_tests(tdx_sept_guard_executor)]
mod tests {
    use crate::platform::sync::KAtomic64;
    use crate::policy::spte::SHADOW_NONPRESENT_VALUE;
    use crate::policy::status::{
        TDX_PREVIOUS_TLB_EPOCH_BUSY,
        TDX_TLB_TRACKING_NOT_DONE, //
    };
    use crate::policy::*;
    use crate::sim::test_vm;
    use kernel::prelude::*;

    /// Answers SEAMCALLs from a script, then success; counts the calls.
    struct Script {
        answers: [Status; 4],
        calls: usize,
    }

    impl Script {
        fn new(answers: &[Status]) -> Self {
            let mut all = [Status::SUCCESS; 4];
            for (slot, answer) in all.iter_mut().zip(answers) {
                *slot = *answer;
            }
            Self {
                answers: all,
                calls: 0,
            }
        }
    }

    impl Seamcall for Script {
        fn seamcall(&mut self, _op: &SeptOp) -> Status {
            self.calls += 1;
            self.answers
                .get(self.calls - 1)
                .copied()
                .unwrap_or(Status::SUCCESS)
        }
    }

    const BUSY: Status = Status::operand_busy(Operand::Rcx);
    const AUG: SeptOp = SeptOp::new_4k(Leaf::MemPageAug, 0x1000);
    const BLOCK: SeptOp = SeptOp::new_4k(Leaf::MemRangeBlock, 0x1000);
    const TRACK: SeptOp = SeptOp::new_4k(Leaf::MemTrack, 0);

    #[test]
    fn busy_then_success_is_one_kick_and_one_retry() -> Result {
        let vm = test_vm(2, Policy::DEFAULT)?;
        let mut script = Script::new(&[BUSY]);
        assert_eq!(
            vm.executor().run(&AUG, &mut script),
            Outcome::Done { tries: 2 }
        );
        assert_eq!(script.calls, 2);
        let c = vm.counters();
        assert_eq!(
            (
                c.ops.get(),
                c.seamcalls.get(),
                c.kicks.get(),
                c.retries.get()
            ),
            (1, 2, 1, 1)
        );
        assert_eq!(
            (
                c.retry_successes.get(),
                c.busy_aug.get(),
                c.busy_operand_rcx.get()
            ),
            (1, 1, 1)
        );
        assert!(!vm.gate().is_raised());
        Ok(())
    }

    #[test]
    fn busy_twice_is_a_vm_bug_after_two_seamcalls() -> Result {
        let vm = test_vm(2, Policy::DEFAULT)?;
        let mut script = Script::new(&[BUSY, BUSY, BUSY]);
        let outcome = vm.executor().run(&BLOCK, &mut script);
        assert_eq!(
            outcome,
            Outcome::VmBug {
                reason: VmBugReason::BusyAfterKick,
                status: BUSY,
                tries: 2
            }
        );
        assert_eq!(script.calls, 2);
        assert_eq!(vm.counters().vm_bugs.get(), 1);
        assert!(!vm.gate().is_raised());
        Ok(())
    }

    #[test]
    fn non_busy_errors_pass_through_untouched() -> Result {
        let vm = test_vm(1, Policy::DEFAULT)?;
        let err = Status::from_raw(TDX_TLB_TRACKING_NOT_DONE);
        let mut script = Script::new(&[err]);
        let op = SeptOp::new_4k(Leaf::MemPageRemove, 0x1000);
        assert_eq!(
            vm.executor().run(&op, &mut script),
            Outcome::Error {
                status: err,
                tries: 1
            }
        );
        assert_eq!(
            (vm.counters().kicks.get(), vm.counters().errors.get()),
            (0, 1)
        );
        Ok(())
    }

    #[test]
    fn track_retries_on_previous_epoch_busy() -> Result {
        let vm = test_vm(1, Policy::DEFAULT)?;
        let mut script = Script::new(&[Status::from_raw(TDX_PREVIOUS_TLB_EPOCH_BUSY)]);
        assert_eq!(
            vm.executor().run(&TRACK, &mut script),
            Outcome::Done { tries: 2 }
        );
        assert_eq!(vm.counters().busy_prev_tlb_epoch.get(), 1);
        Ok(())
    }

    #[test]
    fn upstream72_hands_map_busy_back_and_retries_unmap_once() -> Result {
        let vm = test_vm(1, Policy::Upstream72)?;
        let mut script = Script::new(&[BUSY]);
        assert_eq!(
            vm.executor().run(&AUG, &mut script),
            Outcome::Busy { status: BUSY }
        );
        assert_eq!(script.calls, 1);
        let mut script = Script::new(&[BUSY, BUSY]);
        assert!(matches!(
            vm.executor().run(&BLOCK, &mut script),
            Outcome::VmBug { tries: 2, .. }
        ));
        Ok(())
    }

    #[test]
    fn blind_retry_loops_without_kicking() -> Result {
        let vm = test_vm(1, Policy::BlindRetry)?;
        let mut script = Script::new(&[BUSY, BUSY, BUSY]);
        assert_eq!(
            vm.executor().run(&AUG, &mut script),
            Outcome::Done { tries: 4 }
        );
        assert_eq!(
            (vm.counters().kicks.get(), vm.counters().retries.get()),
            (0, 3)
        );
        Ok(())
    }

    #[test]
    fn max_tries_is_validated_not_clamped() {
        assert!(MaxTries::new(0).is_err());
        assert!(MaxTries::new(MaxTries::MAX + 1).is_err());
        assert_eq!(MaxTries::new(MaxTries::MIN).map(MaxTries::get), Ok(1));
        assert_eq!(MaxTries::DEFAULT.get(), 2);
    }

    #[test]
    fn the_spte_stays_frozen_across_kick_and_retry() -> Result {
        let vm = test_vm(2, Policy::DEFAULT)?;
        let spte = KAtomic64::new(SHADOW_NONPRESENT_VALUE);

        /// Checks the SPTE is frozen at every SEAMCALL, and busy once.
        struct Watch<'a> {
            spte: &'a KAtomic64,
            calls: u32,
            frozen_every_time: bool,
        }
        impl Seamcall for Watch<'_> {
            fn seamcall(&mut self, _op: &SeptOp) -> Status {
                self.calls += 1;
                self.frozen_every_time &= self.spte.load_acquire() == FROZEN_SPTE;
                if self.calls == 1 {
                    BUSY
                } else {
                    Status::SUCCESS
                }
            }
        }

        let mut watch = Watch {
            spte: &spte,
            calls: 0,
            frozen_every_time: true,
        };
        let outcome =
            vm.executor()
                .run_on_spte(&spte, SHADOW_NONPRESENT_VALUE, 0x1007, &AUG, &mut watch);
        assert_eq!(outcome, Ok(Outcome::Done { tries: 2 }));
        assert!(watch.frozen_every_time);
        assert_eq!(spte.load_acquire(), 0x1007);

        // A VM bug leaves the old value in place.
        let mut script = Script::new(&[BUSY, BUSY]);
        let outcome =
            vm.executor()
                .run_on_spte(&spte, 0x1007, SHADOW_NONPRESENT_VALUE, &BLOCK, &mut script);
        assert!(matches!(outcome, Ok(Outcome::VmBug { .. })));
        assert_eq!(spte.load_acquire(), 0x1007);
        Ok(())
    }
}
