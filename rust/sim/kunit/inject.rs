// SPDX-License-Identifier: GPL-2.0

//! The module's fault injection points (`fail_map_busy`, `fail_retry_busy`)
//! in the simulated TDX module: each injected busy is answered with one
//! kick and one real retry, counted and traced apart; an injected retry
//! stops the VM; `times` bounds the injections. The points are set as their
//! debugfs files would set them (`platform::fault::testing`), and turned off
//! again before anything is asserted.

use kernel::macros::kunit_tests;

#[kunit_tests(tdx_sept_guard_sim_inject)]
mod tests {
    use super::super::test_vm;
    use crate::platform::fault::{
        injected_busy,
        testing, //
        Fault,
    };
    use crate::platform::thread::sleep_ms;
    use crate::platform::trace::record::Recording;
    use crate::policy::*;
    use crate::sim::tdp_mmu::Fault as Handled;
    use crate::sim::workload::Workload;
    use kernel::prelude::*;
    use kernel::str::CString;

    const X: u64 = 0x7000;

    /// The policy counters `names`, in order.
    fn read<const N: usize>(c: &Counters<impl CounterCell>, names: [&str; N]) -> [u64; N] {
        names.map(|n| c.counter(n).map_or(u64::MAX, CounterCell::get))
    }

    /// Three faults with `fail_map_busy` at 100% for 3 times: the first
    /// fault's SEPT.ADD and AUG and the second fault's AUG are injected, the
    /// third fault runs clean. Each injected try is followed by exactly one
    /// kick and one real retry, and both are traced as injected.
    #[test]
    fn each_injected_map_busy_gets_one_kick_and_one_retry() -> Result {
        let vm = test_vm(2, Policy::DEFAULT)?;
        testing::set(Fault::MapBusy, 100, 3)?;
        let recording = Recording::start(Some(vm.events.vm()));
        let faults = [
            vm.handle_fault(X, false),
            vm.handle_fault(X + 0x1000, false),
            vm.handle_fault(X + 0x2000, false),
        ];
        let left = testing::times(Fault::MapBusy);
        testing::clear();
        let events = recording?.stop()?;
        let counters = read(
            &vm.counters,
            [
                "ops",
                "seamcalls",
                "injected_busy",
                "injected_retry_busy",
                "kicks",
                "retries",
                "retry_successes",
                "busy_sept_add",
                "busy_aug",
                "vm_bugs",
            ],
        );
        let g = vm.cfg.geometry;
        let busy = injected_busy().raw();
        let (sept_add, aug) = (Leaf::MemSeptAdd.number(), Leaf::MemPageAug.number());
        let want = CString::try_from_fmt(fmt!(
            "kick kicked=0 ok=1 injected\n\
             retry leaf={} gpa={:#x} level=2 status={:#x} tries=1 injected\n\
             kick kicked=0 ok=1 injected\n\
             retry leaf={} gpa={:#x} level=1 status={:#x} tries=1 injected\n\
             kick kicked=0 ok=1 injected\n\
             retry leaf={} gpa={:#x} level=1 status={:#x} tries=1 injected\n",
            sept_add,
            g.table_gpa(g.table_of(X)),
            busy,
            aug,
            X,
            busy,
            aug,
            X + 0x1000,
            busy,
        ))?;
        pr_info!(
            "injected map busies: counters {:?}, traced:\n{}",
            counters,
            core::str::from_utf8(&events).unwrap_or("(not UTF-8)")
        );
        assert_eq!(faults, [Handled::Mapped; 3]);
        assert_eq!(left, 0);
        // 4 operations, 7 tries: 3 injected, 4 real SEAMCALLs (the three
        // retries and the third fault's AUG); no busy of a leaf.
        assert_eq!(counters, [4, 4, 3, 0, 3, 3, 3, 0, 0, 0]);
        assert_eq!(events.as_slice(), want.to_bytes());
        assert!(!vm.is_stopped());
        assert!(!vm.gate.is_raised());
        assert_eq!(vm.mismatches(), 0);
        Ok(())
    }

    /// The latency histograms time what the counters count: the three
    /// faults with three injected busies, then a zap of X. Only issued
    /// SEAMCALLs are timed (one SEPT.ADD and three AUGs: the injected tries
    /// call nothing), then the zap's BLOCK, TRACK and REMOVE; each kick
    /// (three for the injected busies, one after the zap's TRACK), each
    /// gate hold of a busy operation (three, each at least as long as its
    /// kick: the longest before the zap's kick) and each map of an S-EPT
    /// entry (four). `reset` empties them.
    #[test]
    fn the_histograms_time_each_seamcall_kick_gate_hold_and_map() -> Result {
        let vm = test_vm(2, Policy::DEFAULT)?;
        testing::set(Fault::MapBusy, 100, 3)?;
        let faults = [
            vm.handle_fault(X, false),
            vm.handle_fault(X + 0x1000, false),
            vm.handle_fault(X + 0x2000, false),
        ];
        testing::clear();
        let latency = vm.events.latency().ok_or(EINVAL)?;
        let (kick_max, gate_max) = latency.kick_gate_max();
        let zapped = vm.zap(X);
        let counts = latency.counts();
        let kicks = read(&vm.counters, ["kicks", "seamcalls"]);
        vm.reset_stats();
        let after_reset = latency.counts();
        pr_info!(
            "histograms: counts {:?}, longest kick {} ns, longest gate hold {} ns\n",
            counts,
            kick_max,
            gate_max
        );
        assert_eq!(faults, [Handled::Mapped; 3]);
        assert_eq!(zapped, crate::sim::tdp_mmu::Zap::Zapped);
        // AUG, SEPT.ADD, PAGE.ADD, BLOCK, TRACK, REMOVE; kick, gate, map.
        assert_eq!(counts, [3, 1, 0, 1, 1, 1, 4, 3, 4]);
        // As many kicks and SEAMCALLs as the counters say.
        assert_eq!(kicks, [4, 7]);
        assert!(gate_max >= kick_max);
        assert_eq!(after_reset, [0; 9]);
        Ok(())
    }

    /// `fail_retry_busy` answers the retry busy too: the VM stops after one
    /// kick, with no SEAMCALL issued, and the stop is traced as injected.
    #[test]
    fn an_injected_retry_busy_stops_the_vm() -> Result {
        let vm = test_vm(2, Policy::DEFAULT)?;
        testing::set(Fault::MapBusy, 100, 1)?;
        testing::set(Fault::RetryBusy, 100, 1)?;
        let recording = Recording::start(Some(vm.events.vm()));
        let fault = vm.handle_fault(X, false);
        testing::clear();
        let events = recording?.stop()?;
        let counters = read(
            &vm.counters,
            [
                "seamcalls",
                "injected_busy",
                "injected_retry_busy",
                "kicks",
                "retries",
                "vm_bugs",
            ],
        );
        let g = vm.cfg.geometry;
        let (leaf, busy) = (Leaf::MemSeptAdd.number(), injected_busy().raw());
        let want = CString::try_from_fmt(fmt!(
            "kick kicked=0 ok=1 injected\n\
             retry leaf={} gpa={:#x} level=2 status={:#x} tries=1 injected\n\
             vm_stop leaf={} status={:#x} reason=busy_after_kick injected\n",
            leaf,
            g.table_gpa(g.table_of(X)),
            busy,
            leaf,
            busy,
        ))?;
        assert_eq!(fault, Handled::Stopped);
        let rec = vm.stop_record().ok_or(EINVAL)?;
        assert_eq!(rec.reason, Some(VmBugReason::BusyAfterKick));
        assert_eq!(rec.status, injected_busy());
        assert!(rec.injected);
        assert_eq!(counters, [0, 1, 1, 1, 1, 1]);
        assert_eq!(events.as_slice(), want.to_bytes());
        assert!(!vm.gate.is_raised());
        Ok(())
    }

    /// Under `upstream72` an injected map busy goes back to the fault
    /// handler, as KVM 7.2's `-EBUSY` does: no kick, no retry, no SEAMCALL;
    /// the fault run again maps the page.
    #[test]
    fn upstream72_hands_an_injected_busy_back_to_the_fault_handler() -> Result {
        let vm = test_vm(1, Policy::Upstream72)?;
        testing::set(Fault::MapBusy, 100, 1)?;
        let first = vm.handle_fault(X, false);
        testing::clear();
        let again = vm.handle_fault(X, false);
        let counters = read(
            &vm.counters,
            [
                "injected_busy",
                "busy_returned",
                "kicks",
                "retries",
                "seamcalls",
            ],
        );
        assert_eq!((first, again), (Handled::Retry, Handled::Mapped));
        // The SEPT.ADD and AUG of the second run are the only SEAMCALLs.
        assert_eq!(counters, [1, 1, 0, 0, 2]);
        Ok(())
    }

    /// The simulated workload (vCPU threads on their CPUs, the zap thread)
    /// with `fail_map_busy` at 100% for 20 times: 20 injections, each with
    /// its kick (IPIs to the vCPUs in guest mode) and retry, and the VM
    /// runs on. The kernel's `should_fail_ex()` reads `times`, decides, then
    /// decrements it, so the two vCPUs' maps can both pass its last one: 21
    /// is the kernel's bound here, not the module's.
    #[test]
    fn times_bounds_the_injections_under_load() -> Result {
        const TIMES: i32 = 20;
        let vm = test_vm(2, Policy::DEFAULT)?;
        testing::set(Fault::MapBusy, 100, TIMES)?;
        let work = Workload::start(vm.clone(), u64::MAX)?;
        let mut waited = 0;
        while testing::times(Fault::MapBusy) != 0 && waited < 10_000 {
            sleep_ms(10);
            waited += 10;
        }
        let left = testing::times(Fault::MapBusy);
        testing::clear();
        // Let the last injected operation finish, then stop.
        sleep_ms(20);
        drop(work);
        let [injected, retry_injected, kicks, retries, vcpus_kicked, bugs] = read(
            &vm.counters,
            [
                "injected_busy",
                "injected_retry_busy",
                "kicks",
                "retries",
                "vcpus_kicked",
                "vm_bugs",
            ],
        );
        pr_info!(
            "under load: {} injected in {} ms, kicks {}, retries {}, vCPUs kicked {}\n",
            injected,
            waited,
            kicks,
            retries,
            vcpus_kicked
        );
        assert_eq!(left, 0);
        assert!((TIMES as u64..=TIMES as u64 + 1).contains(&injected));
        assert_eq!(retry_injected, 0);
        assert!(kicks >= injected);
        assert!(retries >= injected);
        assert_eq!(bugs, 0);
        assert!(!vm.is_stopped());
        Ok(())
    }
}
